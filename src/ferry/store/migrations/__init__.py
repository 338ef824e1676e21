"""Alembic migrations, applied by the server at start."""
