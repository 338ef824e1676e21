"""The outcome rows of a run's chunked objects as a page of outcomes reads them: plain tuples
of the columns it shows (``SHOWN``), their times made aware once per distinct value (a
report's outcomes share their times), by object number or by state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    String,
    Table,
    bindparam,
    select,
    type_coerce,
)

from ferry.store import tables as t


@dataclass(frozen=True, slots=True)
class RunKey:
    transfer_id: str
    run: int

    def of(self, table: Table) -> ColumnElement[bool]:
        """The rows of ``table`` (tasks, chunks, outcomes) that belong to this run."""
        return (table.c.transfer_id == self.transfer_id) & (table.c.run == self.run)


_o = t.outcomes.c
# What a page shows of an outcome row, in this order; the times as stored.
SHOWN = (
    _o.object, _o.attempt, _o.state, _o.bytes, _o.checksum, _o.error_class, _o.error,
    _o.agent, type_coerce(_o.started_at, String), type_coerce(_o.finished_at, String),
    _o.path, _o.size,
)  # fmt: skip
Shown: TypeAlias = tuple[Any, ...]  # a row of ``SHOWN``, its times aware
PATH = 10  # where a row of ``SHOWN`` holds its path
_ORDER = (_o.object, _o.attempt)
# SQLite's planner, without statistics, takes the outcomes' key over their partial index of
# FAILED ones (both are ordered by object): it then reads every outcome after the cursor.
_FAILED_ON_SQLITE = (
    "SELECT object, attempt, state, bytes, checksum, error_class, error, agent, started_at,"
    " finished_at, path, size FROM outcomes INDEXED BY ix_outcomes_failed"
    " WHERE transfer_id = ? AND run = ? AND state = 'FAILED' AND object > ?"
    " ORDER BY object LIMIT ?"
)
_TIME_READERS: dict[str, Callable[[Any], Any]] = {}


def outcome_rows(
    conn: Connection, key: RunKey, numbers: Sequence[int]
) -> dict[int, tuple[Shown, ...]]:
    """The outcome rows of ``numbers`` (ascending), by object then attempt: one range of the
    key when they lie close together (a page), else those objects only (a filter's page)."""
    if not numbers:
        return {}
    low, high = numbers[0], numbers[-1]
    close = high - low < 2 * len(numbers)
    if close:
        wanted, parameters = _o.object.between(low, high), {}
    else:  # bound as one list: no expression built per number
        wanted, parameters = (
            _o.object.in_(bindparam("numbers", expanding=True)),
            {"numbers": numbers},
        )
    query = select(*SHOWN).where(key.of(t.outcomes), wanted).order_by(*_ORDER)
    found: dict[int, tuple[Shown, ...]] = {}
    for row in _aware(conn, conn.execute(query, parameters)):
        found[row[0]] = (*found.get(row[0], ()), row)
    return found


def outcomes_in(conn: Connection, key: RunKey, state: str, after: int, limit: int) -> list[Shown]:
    """Up to ``limit`` outcome rows in ``state`` of objects numbered above ``after``, one per
    object, by number: through ``ix_outcomes_failed`` for FAILED, else along the key."""
    if state == "FAILED" and conn.dialect.name == "sqlite":
        parameters = (key.transfer_id, key.run, after, limit)
        rows: Any = conn.exec_driver_sql(_FAILED_ON_SQLITE, parameters)
    else:
        of_state = (key.of(t.outcomes), _o.object > after, t.outcome_state_is(state))
        rows = conn.execute(select(*SHOWN).where(*of_state).order_by(*_ORDER).limit(limit))
    found: dict[int, Shown] = {}
    for row in _aware(conn, rows):
        found.setdefault(row[0], row)
    return list(found.values())


def _aware(conn: Connection, rows: Any) -> list[Shown]:
    """``rows`` of ``SHOWN`` as tuples, their stored times read as ``UtcDateTime`` reads them,
    each distinct one once."""
    if conn.dialect.name not in _TIME_READERS:
        dialect: Dialect = conn.dialect
        process = t.UtcDateTime().dialect_impl(dialect).result_processor(dialect, None)
        _TIME_READERS[dialect.name] = process or (lambda value: value)
    read = _TIME_READERS[conn.dialect.name]
    known: dict[Any, Any] = {None: None}
    found = []
    for *shown, started, finished, path, size in rows:
        if started not in known:
            known[started] = read(started)
        if finished not in known:
            known[finished] = read(finished)
        found.append((*shown, known[started], known[finished], path, size))
    return found
