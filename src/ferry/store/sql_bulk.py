"""Statements run once per row of a batch, through the driver's own executemany.

SQLAlchemy builds and processes a parameter dictionary per row (bind processors for every value,
the datetime type's conversion for each datetime): for batches of hundreds of tasks that was most
of the store's CPU. A ``BulkStatement`` is compiled once per dialect into the driver's positional
form and takes plain tuples, whose values must already be what the driver stores: datetimes go
through ``db_time`` once per batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeAlias

from sqlalchemy import Connection, Dialect, Insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from ferry.store.tables import UtcDateTime

Arranger: TypeAlias = Callable[[tuple[Any, ...]], tuple[Any, ...]]


class BulkStatement:
    """``statement`` with bind parameters called ``names``, taken as tuples in that order; the
    other parameters (constants of the statement) are filled in."""

    def __init__(self, statement: ClauseElement, names: Sequence[str]) -> None:
        if isinstance(statement, Insert):
            # Nothing is read back from a row of an executemany: no RETURNING of its key.
            statement = statement.inline()
        self.statement = statement
        self.names = tuple(names)
        self._compiled: dict[str, tuple[str, Arranger]] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, Arranger]:
        """The SQL text for the driver and the function that orders a row's values for it."""
        if dialect.name not in self._compiled:
            self._compiled[dialect.name] = self._compile(dialect)
        return self._compiled[dialect.name]

    def _compile(self, dialect: Dialect) -> tuple[str, Arranger]:
        # psycopg takes positional "%s" as well as named parameters: compile for that.
        positional = dialect if dialect.positional else _format_style(dialect)
        compiled = self.statement.compile(dialect=positional)
        assert isinstance(compiled, SQLCompiler)
        order = compiled.positiontup or []
        constants = {
            name: _driver_value(compiled.binds[name], dialect)
            for name in order
            if name not in self.names
        }
        slots = (*self.names, *constants)
        extra = tuple(constants.values())
        picks = [slots.index(name) for name in order]
        if len(picks) == 1:
            only = picks[0]
            return compiled.string, lambda row: ((row + extra)[only],)
        pick = itemgetter(*picks)
        if not extra and picks == list(range(len(self.names))):
            return compiled.string, lambda row: row
        return compiled.string, lambda row: pick(row + extra)


def _format_style(dialect: Dialect) -> Dialect:
    make: Any = type(dialect)
    formatted: Dialect = make(paramstyle="format")
    return formatted


def _driver_value(bind: Any, dialect: Dialect) -> Any:
    if bind.required:
        raise ValueError(f"bind parameter {bind.key!r} is not among the row's names")
    process = bind.type.dialect_impl(dialect).bind_processor(dialect)
    value = bind.effective_value
    return process(value) if process is not None else value


def execute_many(
    conn: Connection, statement: BulkStatement, rows: Sequence[tuple[Any, ...]]
) -> CursorResult[Any] | None:
    """Run ``statement`` once per row, in one call to the driver; nothing for no rows."""
    if not rows:
        return None
    sql, arrange = statement.compiled(conn.dialect)
    return conn.exec_driver_sql(sql, [arrange(row) for row in rows])


_TIME_PROCESSORS: dict[str, Callable[[Any], Any] | None] = {}


def db_time(dialect: Dialect, value: datetime | None) -> Any:
    """``value`` as the database stores a ``UtcDateTime``, exactly as SQLAlchemy would write it
    (its text form on SQLite: the stored strings are compared)."""
    if value is None:
        return None
    if dialect.name not in _TIME_PROCESSORS:
        _TIME_PROCESSORS[dialect.name] = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    process = _TIME_PROCESSORS[dialect.name]
    return process(value) if process is not None else value
