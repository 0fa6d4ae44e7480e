"""Staff accounts, roles, branch membership, competences and API tokens."""
