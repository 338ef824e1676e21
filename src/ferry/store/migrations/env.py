"""Alembic environment: run on a connection handed over by ``ferry.store.sql.migrate``."""

from __future__ import annotations

from alembic import context

from ferry.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
