"""The schema the migrations build is the one ``ferry.store.tables`` declares, on SQLite and on
PostgreSQL: the queries are written against the declaration, the database runs the migrations."""

from __future__ import annotations

import re
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from ferry.store import tables


def _condition(text: Any, dialect: str) -> str:
    """A partial index's condition without what each database adds when it reads one back
    (PostgreSQL's casts and parentheses, the table's name)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    text = re.sub(r"::[a-z ]+", "", re.sub(r"\b(tasks|outcomes)\.", "", text))
    return re.sub(r"[()\s]", "", text)


def _differences(conn: Connection) -> tuple[list[Any], dict[str, tuple[str, str]]]:
    dialect = conn.dialect
    drift = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    conditions = {}
    for table in tables.metadata.sorted_tables:
        found = {ix["name"]: ix for ix in inspect(conn).get_indexes(table.name)}
        for index in table.indexes:
            declared = _condition(index.dialect_options[dialect.name]["where"], dialect)
            options = found[index.name].get("dialect_options", {})
            built = _condition(options.get(f"{dialect.name}_where"), dialect)
            if declared != built:
                conditions[index.name] = (declared, built)
    return drift, conditions


async def test_the_migrated_schema_is_the_declared_one(fresh_store):
    with fresh_store.engines[0].connect() as conn:  # the writer's, synchronous
        drift, conditions = _differences(conn)
    assert drift == []
    assert conditions == {}
    partial = [
        ix.name for ix in tables.tasks.indexes if ix.dialect_options["sqlite"]["where"] is not None
    ]
    assert len(partial) >= 6, partial
