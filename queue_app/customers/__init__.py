"""Customers: an optional identity behind a visit."""
