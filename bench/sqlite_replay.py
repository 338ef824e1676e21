"""SQLite's own work in a store's phase: the statements the store ran, with their parameters
and transactions, run again through ``sqlite3`` alone on a copy of the database as it was
when the phase began. What is left of the store's time is Python's: SQLAlchemy, the store's
own code, the hand-off to its writer thread."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

# Set on every connection of the store (``sql_base._sqlite_pragmas``); the replay's too.
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON")
_END = {"commit": "COMMIT", "rollback": "ROLLBACK"}


@dataclass
class Recorder:
    """Records what the store's engines run while a phase is named."""

    engines: list[Engine]
    phase: str | None = None
    statements: list[tuple[str, str, Any, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._statement)
            for name in _END:
                event.listen(engine, name, self._ender(_END[name]))

    def _statement(
        self, _conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if self.phase is not None:
            self.statements.append((self.phase, sql, parameters, many))

    def _ender(self, sql: str) -> Any:
        def ended(_conn: Any) -> None:
            if self.phase is not None:
                self.statements.append((self.phase, sql, (), False))

        return ended

    @contextmanager
    def recording(self, phase: str) -> Iterator[None]:
        self.phase = phase
        try:
            yield
        finally:
            self.phase = None


def snapshot(database: Path, into: Path) -> Path:
    """A copy of ``database`` and its write-ahead log (nothing may write meanwhile)."""
    into.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = database.with_name(database.name + suffix)
        if source.exists():
            shutil.copy(source, into / source.name)
    return into / database.name


def replay(database: Path, statements: list[tuple[str, str, Any, bool]]) -> dict[str, float]:
    """Seconds ``sqlite3`` takes, by phase, to run ``statements`` in their order on
    ``database``, each read to its end."""
    conn = sqlite3.connect(database, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    spent: dict[str, float] = {}
    for phase, sql, parameters, many in statements:
        began = time.perf_counter()
        if sql in ("COMMIT", "ROLLBACK"):
            if conn.in_transaction:
                conn.execute(sql)
        elif many:
            conn.executemany(sql, parameters)
        else:
            conn.execute(sql, parameters).fetchall()
        spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - began
    conn.close()
    return spent
