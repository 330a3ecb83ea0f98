"""Alembic migrations of the SQL schema (``insighthub migrate`` upgrades to head)."""
