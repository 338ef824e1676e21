"""The SQL store's foundation: engine, migrations, transactions, row conversion."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Row,
    Table,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ferry import __version__
from ferry.errors import ConfigError, StoreUnavailable
from ferry.store.abc import Principal
from ferry.store.crypto import Cipher
from ferry.store.sql_rows import SpecCache
from ferry.store.sql_watch import CREDENTIALS_CHANNEL, CredentialWatch

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a token's principal is trusted without reading the database again. A revocation
# forgets it at once: on this server directly, on the others sharing a PostgreSQL database
# through ``CredentialWatch``.
TOKEN_CACHE_SECONDS = 5.0
WAL_AUTOCHECKPOINT_PAGES = 16_384  # 64 MiB of 4 KiB pages
BUSY_TIMEOUT_MS = 4000
UNWRITABLE_HOLD_S = 2.0  # how long writes fail at once after one failed on the database
# Reads run on this many threads at once (SQLite's WAL lets readers run beside its writer).
READER_THREADS = 4
MIGRATE = "ferry.migrate"  # the lock servers take in turn to migrate one database
SINGLETON_IDLE_S = 15  # a frozen server's singleton lock is released after this
SINGLETON_KEEP_S = 5.0


T = TypeVar("T")
P = ParamSpec("P")


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def _keep_busy(conn: AsyncConnection, turn_over: asyncio.Event) -> bool:
    """Bound how long a singleton's lock outlives a holder that stopped answering, and keep it
    while the holder lives, until ``turn_over`` (see ``SqlBase.singleton``); whether the
    bound was set (PostgreSQL before 14 has no such setting: the lock is kept as before)."""
    try:
        await conn.execute(text(f"SET idle_session_timeout = '{SINGLETON_IDLE_S}s'"))
        await conn.commit()
    except DBAPIError:
        await conn.rollback()
        return False
    while True:
        try:
            await asyncio.wait_for(turn_over.wait(), SINGLETON_KEEP_S)
        except TimeoutError:
            await conn.execute(text("SELECT 1"))
            await conn.commit()
        else:
            return True


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
    # A write waits this long for a lock another process holds, then fails: the API answers
    # 503 within its bound (5 s) instead of a 500 after 40.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _connect_args(url: str, *, synchronous: bool) -> dict[str, Any]:
    """What each connection is opened with. SQLite: the connection class that begins its own
    transactions. PostgreSQL: a statement waits ``BUSY_TIMEOUT_MS`` for a lock another session
    holds, then fails (the API's 503), as SQLite's ``busy_timeout`` does; without it a POST
    waited for as long as the lock was held."""
    parsed = make_url(url if not synchronous else _sync_url(url))
    if parsed.get_backend_name() == "sqlite":
        return {"factory": _SqliteConnection}
    if parsed.get_backend_name() != "postgresql":
        return {}
    if parsed.get_driver_name() == "asyncpg":
        return {"server_settings": {"lock_timeout": str(BUSY_TIMEOUT_MS)}}
    return {"options": f"-c lock_timeout={BUSY_TIMEOUT_MS}"}  # libpq's drivers


def is_in_memory_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database that lives in one connection's memory."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _sync_url(url: str) -> str:
    """The same database through a synchronous driver, for the writer thread."""
    parsed = make_url(url)
    synchronous = _SYNC_DRIVERS.get(parsed.drivername)
    if synchronous is not None:
        parsed = parsed.set(drivername=synchronous)
    return parsed.render_as_string(hide_password=False)


# psycopg is synchronous and asynchronous at once; these are not.
_SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite+pysqlite", "postgresql+asyncpg": "postgresql+psycopg"}


def _sqlite_begins_itself(dbapi_connection: Any, _record: Any) -> None:
    """The driver begins no transaction of its own: ``_sqlite_begin_immediate`` does."""
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(conn: Connection) -> None:
    """A write transaction takes SQLite's write lock as it begins, not at its first write:
    what it reads first (the active count of a channel, the rows a report holds) cannot be
    changed by another process before it writes."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


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
    """Bring the schema to this code's latest revision, unless a newer Ferry has migrated it
    past that (``_refuse_unknown_revision``). Servers of one PostgreSQL database that start
    together migrate it in turn (a lock held until the migration's transaction ends, waited
    for as long as the other's migration takes); the next finds the schema at its head."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(MIGRATE)})
    config = _alembic_config(connection)
    _refuse_unknown_revision(connection, config)
    command.upgrade(config, "head")


def refuse_newer_schema(url: str) -> None:
    """``ConfigError`` when a newer Ferry has migrated the database at ``url`` past this code's
    schema; checked before the server starts, so that its operator reads one line. A database
    that cannot be reached is left to the store's own opening to report."""
    engine = create_engine(_sync_url(url), connect_args=_connect_args(url, synchronous=True))
    try:
        with engine.connect() as connection:
            _refuse_unknown_revision(connection, _alembic_config(connection))
    except OperationalError:
        return
    finally:
        engine.dispose()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _refuse_unknown_revision(connection: Connection, config: Config) -> None:
    """This code would misread a schema it does not know, and taking a database back to an
    older schema is not for it to do."""
    scripts = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        raise ConfigError(
            f"the database is at schema revision {current}, which this Ferry"
            f" ({__version__}, schema {scripts.get_current_head()}) does not know: a newer"
            " Ferry has migrated it; run that version, or give this one another database"
        )


class PrincipalCache:
    """Principals of recently authenticated tokens, keyed by the token's hash (the token itself
    is never kept), each for ``ttl`` seconds. ``clear`` forgets them all at once: a change read
    before it (``generation`` moved meanwhile) is not stored. While ``trusted`` is false (no
    word of other servers' revocations can reach it) it keeps nothing."""

    def __init__(
        self, ttl: float, *, limit: int = 4096, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self.generation = 0
        self.trusted = True
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
        if generation != self.generation or self.ttl <= 0 or not self.trusted:
            return
        if len(self._entries) >= self.limit:  # the oldest goes first
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1


class QueuedLock:
    """The store's write lock, which knows how many callers wait for it: the depth of the
    write queue that the monitoring shows."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()

    def locked(self) -> bool:
        """Whether a write holds it now."""
        return self._lock.locked()


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
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._read_engine: Engine | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._write_lock = QueuedLock()
        # After a write failed on the database's state (locked by another process, disk full,
        # gone), writes fail at once for a moment instead of each waiting out the busy timeout
        # in turn: a request then answers 503 in seconds, not after every write queued ahead.
        self._unwritable: tuple[float, str] | None = None
        self._principals = PrincipalCache(token_cache_seconds)
        self._credential_watch: CredentialWatch | None = None
        self._specs = SpecCache()
        # Told how long each lease that got tasks held the lease lock all servers share.
        self.observe_lease_lock: Callable[[float], None] | None = None

    @property
    def write_queue_depth(self) -> int:
        return self._write_lock.waiting

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store is not open: call open() first")
        return self._engine

    @property
    def engines(self) -> list[Engine]:
        """Every engine the open store runs statements through (the writer's, the readers',
        the asynchronous one's), for listeners that count or explain them."""
        if self._sync_engine is None or self._read_engine is None:
            raise RuntimeError("store is not open: call open() first")
        return [self._sync_engine, self._read_engine, self.engine.sync_engine]

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def open(self) -> None:
        """Connect and apply every pending migration."""
        if is_in_memory_sqlite(self.url):
            raise ConfigError(
                "an in-memory SQLite database cannot be shared by the store's connections:"
                " give it a file, e.g. sqlite+aiosqlite:///ferry.db"
            )
        connect_args = _connect_args(self.url, synchronous=False)
        self._engine = create_async_engine(self.url, connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        async with self._engine.begin() as conn:
            await conn.run_sync(_upgrade)
        connect_args = _connect_args(self.url, synchronous=True)
        self._sync_engine = create_engine(_sync_url(self.url), connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)
            event.listen(self._sync_engine, "connect", _sqlite_begins_itself)
            event.listen(self._sync_engine, "begin", _sqlite_begin_immediate)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ferry-store-writer")
        # Reads begin no transaction of their own on SQLite (each statement sees the database
        # as it is), as the asynchronous driver's did; they never take the write lock.
        self._read_engine = create_engine(_sync_url(self.url), connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self._read_engine, "connect", _sqlite_pragmas)
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="ferry-store-reader")
        if not self.is_sqlite:  # several servers may share it: each hears the others' revocations
            self._credential_watch = CredentialWatch(self.url, self._principals)
            self._credential_watch.start()

    async def close(self) -> None:
        if self._credential_watch is not None:
            await self._credential_watch.stop()
            self._credential_watch = None
        if self._writer is not None:
            async with self._write_lock:  # no transaction is under way on the writer thread
                self._writer.shutdown()
                self._writer = None
        if self._readers is not None:
            self._readers.shutdown()
            self._readers = None
        if self._read_engine is not None:
            self._read_engine.dispose()
            self._read_engine = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; committed on success, rolled back on any error."""
        async with self._write_lock:
            self._refuse_while_unwritable()
            try:
                async with self.engine.begin() as conn:
                    yield conn
            except OperationalError as exc:
                self._note_unwritable(exc)
                raise

    async def listening_for_revocations(self) -> None:
        """Returns once this store hears other servers' revocations (at once on SQLite, which
        one server uses)."""
        if self._credential_watch is not None:
            await self._credential_watch.listening.wait()

    @contextlib.asynccontextmanager
    async def _tx_revoking(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction that revokes credentials: once it commits, this server forgets
        the principals it keeps, and every other server sharing the database is told to."""
        async with self._tx() as conn:
            yield conn
            if not self.is_sqlite:
                await conn.execute(
                    text("SELECT pg_notify(:channel, '')"), {"channel": CREDENTIALS_CHANNEL}
                )
        self._principals.clear()

    def _refuse_while_unwritable(self) -> None:
        if self._unwritable is not None:
            until, cause = self._unwritable
            if time.monotonic() < until:
                raise StoreUnavailable(cause)
            self._unwritable = None  # this write tries again

    def _note_unwritable(self, exc: OperationalError) -> None:
        cause = str(exc.orig or exc).splitlines()[0][:200]
        self._unwritable = (time.monotonic() + UNWRITABLE_HOLD_S, cause)

    async def _write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(conn, *args, **kwargs)`` in one write transaction, run whole on the store's
        writer thread: the hot transactions (leases, results, new tasks). Run from the event
        loop, each statement was several hand-offs to a database thread, and at each one the
        loop first ran whatever else was ready while the transaction, holding the database's
        single writer, waited. A caller cancelled meanwhile gets its transaction rolled back
        unless it was committing already, and the lock stays held until it has ended."""
        if self._writer is None or self._sync_engine is None:
            raise RuntimeError("store is not open: call open() first")
        engine, abandoned = self._sync_engine, threading.Event()

        def transaction() -> T:
            with engine.connect() as conn:
                result = work(conn, *args, **kwargs)
                if abandoned.is_set():
                    conn.rollback()
                else:
                    conn.commit()
                return result

        async with self._write_lock:
            self._refuse_while_unwritable()
            future = asyncio.get_running_loop().run_in_executor(self._writer, transaction)
            try:
                return await asyncio.shield(future)
            except OperationalError as exc:
                self._note_unwritable(exc)
                raise
            except asyncio.CancelledError:
                abandoned.set()
                while not future.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([future])
                raise

    async def _reading(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(conn, *args, **kwargs)`` on one of the store's reader threads, through the
        synchronous engine: one hand-off per read. Through the asynchronous driver each
        statement, and the connection's checkout and return, was a hand-off of its own (a
        transfer's status read: ≈ 400 against ≈ 120 µs of the server's CPU)."""
        if self._readers is None or self._read_engine is None:
            raise RuntimeError("store is not open: call open() first")
        engine = self._read_engine

        def read() -> T:
            with engine.connect() as conn:
                return work(conn, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._readers, read)

    async def checkpoint(self) -> None:
        if not self.is_sqlite:
            return
        # PASSIVE: copies what no reader still needs, waits for no one, and syncs the disk on
        # a reader thread, not in the event loop or under the write lock.
        await self._reading(Connection.exec_driver_sql, "PRAGMA wal_checkpoint(PASSIVE)")

    @contextlib.asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        """Whether this server may run the loop ``name`` now: with several servers on one
        PostgreSQL, one holds its advisory lock and the others skip the turn. SQLite has one
        server.

        A server killed mid-turn loses the lock when PostgreSQL sees its connection close. One
        that stops answering with its connection open (frozen, its host hung) loses it too:
        the lock's session is ended by PostgreSQL once idle for ``SINGLETON_IDLE_S``
        (``idle_session_timeout``, PostgreSQL 14 and later), and a live holder keeps it busy
        every ``SINGLETON_KEEP_S`` however long its turn."""
        if self.is_sqlite:
            yield True
            return
        key = _lock_key(name)
        async with self.engine.connect() as conn:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            await conn.commit()
            if not got:
                yield False
                return
            turn_over = asyncio.Event()
            keeper = asyncio.create_task(_keep_busy(conn, turn_over))
            try:
                yield True
            finally:
                turn_over.set()
                if await keeper:
                    await conn.execute(text("RESET idle_session_timeout"))
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()

    def _serialize(self, conn: Connection, name: str) -> None:
        """Hold, until the transaction ends, the lock called ``name`` across every server of
        this database (PostgreSQL advisory lock); SQLite's single writer already is one."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(name)})

    def _insert_missing(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, leaving alone those whose key exists (also one a concurrent
        transaction inserted)."""
        if not rows:
            return
        dialect_insert = sqlite_insert if self.is_sqlite else postgresql_insert
        conn.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


# The shapes of most reads, for ``SqlBase._reading``: one statement, its rows.
def all_rows(
    conn: Connection, statement: Executable, parameters: dict[str, Any] | None = None
) -> list[Row[Any]]:
    return list(conn.execute(statement, parameters).all())


def first_row(
    conn: Connection, statement: Executable, parameters: dict[str, Any] | None = None
) -> Row[Any] | None:
    return conn.execute(statement, parameters).first()


def scalar_of(conn: Connection, statement: Executable) -> Any:
    return conn.execute(statement).scalar()


class Unindexed(ColumnElement[Any]):
    """``column``, which SQLite's query planner may not search an index for, nor take an
    order from: written ``+column`` there. Without statistics it judged ``state = ?`` on the
    queue index more selective than the hundreds of ids a lease names, and walked every queued
    task's entry; and it scanned the whole table in the primary key's order rather than sort
    the few rows an index finds."""

    inherit_cache = True
    # A list, as SQLAlchemy declares it (its cache key is made from it).
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _compile_unindexed(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(Unindexed, "sqlite")
def _compile_unindexed_on_sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)
