"""CSV exports for the bank's data warehouse (`GET /api/v1/exports/<name>.csv`)."""
