"""The SQL store's foundation: engine, migrations, transactions, row conversion."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Row, Table, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ferry.domain.locations import parse_location
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import (
    Credentials,
    Run,
    RunCounts,
    Storage,
    Task,
    Transfer,
    TransferKind,
    TransferOptions,
    TransferSpec,
)
from ferry.store.abc import Principal
from ferry.store.crypto import Cipher, SecretKeyError

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a token's principal is trusted without reading the database again: a token revoked
# through another server or process stops working here within this many seconds.
TOKEN_CACHE_SECONDS = 5.0
WAL_AUTOCHECKPOINT_PAGES = 16_384  # 64 MiB of 4 KiB pages


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The server's checkpoint loop writes the WAL back every half second, outside the write
    # transactions (the disk syncs of a checkpoint held every write up behind a busy disk);
    # this is the bound when nothing does (a store without the loop, a stalled disk).
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class _SqliteConnection(sqlite3.Connection):
    """Rolls back before it closes. A task cancelled between a statement and the reading of
    its rows has its connection invalidated and closed with that statement still open; sqlite3
    then only marks the connection closed, and its transaction and write lock live on until
    the statement's cursor is freed: every other writer meanwhile fails with "database is
    locked"."""

    def close(self) -> None:
        try:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed already
                if self.in_transaction:
                    self.rollback()
        finally:
            super().close()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class PrincipalCache:
    """Principals of recently authenticated tokens, keyed by the token's hash (the token itself
    is never kept), each for ``ttl`` seconds. ``clear`` forgets them all at once: a change read
    before it (``generation`` moved meanwhile) is not stored."""

    def __init__(
        self, ttl: float, *, limit: int = 4096, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self.generation = 0
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: str, principal: Principal, generation: int) -> None:
        if generation != self.generation or self.ttl <= 0:
            return
        if len(self._entries) >= self.limit:  # the oldest goes first
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1


class SqlBase:
    """Owns the engine. SQLite allows one writer: writes in this process take a lock so that
    they queue here instead of failing with "database is locked"."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        cipher: Cipher | None = None,
        token_cache_seconds: float = TOKEN_CACHE_SECONDS,
    ) -> None:
        self.url = url
        self.clock = clock
        self.cipher = cipher
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()
        self._principals = PrincipalCache(token_cache_seconds)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store is not open: call open() first")
        return self._engine

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def open(self) -> None:
        """Connect and apply every pending migration."""
        connect_args = {"factory": _SqliteConnection} if self.is_sqlite else {}
        self._engine = create_async_engine(self.url, connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        async with self._engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; committed on success, rolled back on any error."""
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def checkpoint(self) -> None:
        if not self.is_sqlite:
            return
        # PASSIVE: copies what no reader still needs, waits for no one, and syncs the disk in
        # the connection's own thread, not in the event loop or under the write lock.
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    @contextlib.asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        """Whether this server may run the loop ``name`` now: with several servers on one
        PostgreSQL, one holds its advisory lock and the others skip the turn. SQLite has one
        server."""
        if self.is_sqlite:
            yield True
            return
        key = _lock_key(name)
        async with self.engine.connect() as conn:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            await conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()

    async def _serialize(self, conn: AsyncConnection, name: str) -> None:
        """Hold, until the transaction ends, the lock called ``name`` across every server of
        this database (PostgreSQL advisory lock); SQLite's single writer already is one."""
        if not self.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(name)})

    async def _insert_missing(
        self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]
    ) -> None:
        """Insert ``rows``, leaving alone those whose key exists (also one a concurrent
        transaction inserted)."""
        if not rows:
            return
        dialect_insert = sqlite_insert if self.is_sqlite else postgresql_insert
        await conn.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


def storage_from_row(row: Row[Any], cipher: Cipher | None) -> Storage:
    credentials = Credentials()
    if row.credentials:
        if cipher is None:
            raise SecretKeyError("stored credentials cannot be read: no secret key was given")
        credentials = Credentials(cipher.decrypt(row.credentials))
    return Storage(
        name=row.name,
        url=row.url,
        site=row.site,
        options=dict(row.options),
        credentials=credentials,
        health=dict(row.health) if row.health else None,
    )


def spec_from_json(data: dict[str, Any]) -> TransferSpec:
    return TransferSpec(
        kind=TransferKind(data["kind"]),
        sources=tuple(parse_location(s) for s in data["sources"]),
        destination=parse_location(data["destination"]),
        options=TransferOptions.from_json(data.get("options", {})),
    )


def transfer_from_row(row: Row[Any]) -> Transfer:
    return Transfer(
        id=row.id,
        scope=row.scope,
        submitter=row.submitter,
        spec=spec_from_json(row.spec),
        schedule=dict(row.schedule),
        status=TransferStatus(row.status),
        created_at=row.created_at,
        next_run_at=row.next_run_at,
        runs=row.runs,
        error=row.error,
        submission_id=row.submission_id,
    )


def run_from_row(row: Any) -> Run:
    return Run(
        transfer_id=row.transfer_id,
        number=row.number,
        status=RunStatus(row.status),
        due_at=row.due_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expanded=bool(row.expanded),
        counts=RunCounts(
            total=row.total,
            done=row.done,
            failed=row.failed,
            skipped=row.skipped,
            canceled=row.canceled,
            bytes=row.bytes,
        ),
        error=row.error,
        occurrences=row.occurrences,
        skipped_occurrences=row.skipped_occurrences,
        size_total=row.size_total,
        last_result_at=row.last_result_at,
    )


def task_from_row(row: Row[Any]) -> Task:
    return Task(
        id=row.id,
        transfer_id=row.transfer_id,
        run=row.run,
        state=TaskState(row.state),
        source=parse_location(row.source),
        destination=parse_location(row.destination),
        size=row.size,
        bytes_done=row.bytes_done,
        checksum=row.checksum,
        attempts=row.attempts,
        error_class=row.error_class,
        error=row.error,
    )
