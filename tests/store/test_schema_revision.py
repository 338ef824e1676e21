"""A database migrated by a newer Ferry is refused at start with a sentence, on SQLite and
PostgreSQL alike: this code would misread a schema it does not know."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ferry.errors import ConfigError
from ferry.store.sql import SqlStore


async def test_a_database_from_a_newer_ferry_is_refused(database_url, clock) -> None:
    store = SqlStore(database_url, clock=clock)
    await store.open()
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_later'"))
    finally:
        await store.close()

    again = SqlStore(database_url, clock=clock)
    with pytest.raises(ConfigError, match="schema revision 0099_from_later, which this Ferry"):
        await again.open()
    await again.close()


async def test_a_database_at_this_ferrys_revision_opens_again(database_url, clock) -> None:
    for _ in range(2):
        store = SqlStore(database_url, clock=clock)
        await store.open()
        await store.close()
