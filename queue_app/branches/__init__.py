"""Branches, the services they offer and their counters."""
