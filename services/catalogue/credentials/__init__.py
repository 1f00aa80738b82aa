"""Micro-credentials: the signed document (pure), its issuing and verification."""
