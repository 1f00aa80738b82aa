"""Providers, eligible training, the public registry and signed micro-credentials."""
