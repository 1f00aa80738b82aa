"""Learners' accounts: opening, need profile, lifecycle, transfer, personal data."""
