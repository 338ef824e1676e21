"""The SQL store's database and who may use it, on a real SQLite file: WAL mode, the writer thread,
a dropped connection, the administrator's bootstrap token, unknown tokens."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlalchemy import insert

from ferry.domain.transfers import Role, Scope, Storage
from ferry.errors import (
    ConfigError,
    Unauthenticated,
)
from ferry.store import tables
from ferry.store.sql import SqlStore
from ferry.store.sql_base import _sync_url

from .factories import NOW


async def test_sqlite_database_is_in_wal_mode(tmp_path):
    """SQLite only (a pragma of the file), so not on the store fixture of both backends."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "wal.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_connection_dropped_mid_transaction_leaves_the_database_writable(tmp_path):
    """A task cancelled between a statement and the reading of its rows (a request whose
    client went away) gets its connection invalidated and closed while that statement is
    still open. sqlite3 then keeps the connection, its transaction and its write lock, alive
    until the statement's cursor is freed: every later write failed with "database is
    locked". The store's connections roll back as they close."""
    path = tmp_path / "drop.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.open()
    unread = None
    try:
        await store.put_storage(Storage("a", "file:///a"))
        await store.put_storage(Storage("b", "file:///b"))
        async with store.engine.connect() as conn:
            await conn.exec_driver_sql("UPDATE storages SET url = 'file:///changed'")
            raw = await conn.get_raw_connection()
            unread = await raw.driver_connection.execute("SELECT name FROM storages")
            await conn.invalidate()
        with sqlite3.connect(path, timeout=0.5, isolation_level=None) as other:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" while the lock is held
            other.execute("ROLLBACK")
        assert [s.url for s in await store.list_storages()] == ["file:///a", "file:///b"]
        await store.put_storage(Storage("c", "file:///c"))
    finally:
        del unread  # the open statement's cursor: freed, it ends a lock left held
        await store.close()


async def test_an_in_memory_sqlite_database_is_refused_with_the_reason():
    """The store's hot transactions run on their own connection: each would see its own,
    empty, in-memory database."""
    store = SqlStore("sqlite+aiosqlite://")
    with pytest.raises(ConfigError, match="in-memory SQLite database cannot be shared"):
        await store.open()


@pytest.mark.parametrize(
    ("url", "synchronous"),
    [
        ("sqlite+aiosqlite:////data/ferry.db", "sqlite+pysqlite:////data/ferry.db"),
        ("postgresql+psycopg://f:pw@db/ferry", "postgresql+psycopg://f:pw@db/ferry"),
        ("postgresql+asyncpg://f:pw@db/ferry", "postgresql+psycopg://f:pw@db/ferry"),
    ],
)
def test_the_writer_thread_reaches_the_same_database_synchronously(url, synchronous):
    assert _sync_url(url) == synchronous


async def test_a_write_whose_caller_is_cancelled_is_rolled_back_and_holds_the_writer_till_it_ends(
    store,
):
    """A hot transaction runs whole on the writer thread. Its caller cancelled meanwhile (a
    request whose client went away): the transaction is rolled back, not committed behind the
    caller's back, and no other write starts before it has ended."""
    started, release = threading.Event(), threading.Event()

    def work(conn):
        conn.execute(insert(tables.scopes).values(name="abandoned", weight=1, created_at=NOW))
        started.set()
        release.wait(10)

    write = asyncio.ensure_future(store._write(work))
    await asyncio.to_thread(started.wait, 10)
    write.cancel()
    after = asyncio.ensure_future(store.put_scope(Scope("after", 2)))
    await asyncio.sleep(0)  # one turn of the loop: the cancellation reaches the write
    assert store._write_lock.locked()
    assert not write.done()
    assert not after.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await write
    await after
    names = {scope.name for scope in await store.list_scopes()}
    assert "after" in names
    assert "abandoned" not in names


async def test_bootstrap_returns_a_token_only_the_first_time(fresh_store):
    token = await fresh_store.bootstrap()
    assert token
    assert await fresh_store.bootstrap() is None


async def test_bootstrap_token_authenticates_the_administrator(fresh_store):
    principal = await fresh_store.authenticate(await fresh_store.bootstrap())
    assert principal.role is Role.ADMINISTRATOR
    assert principal.agent_id is None


async def test_unknown_token_is_refused(store):
    with pytest.raises(Unauthenticated):
        await store.authenticate("not-a-token")
