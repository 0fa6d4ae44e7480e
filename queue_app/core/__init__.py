"""Pieces every domain package shares: column types, errors, the clock, after-commit events."""
