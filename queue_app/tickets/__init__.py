"""Visits, ticket steps, ticket numbering and the journey event log."""
