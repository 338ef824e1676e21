"""Rows of a numbered run written as the store writes them for chunks of small objects
(docs/small-files.md §2): single tasks with their object's number, chunk lists, carriers and
outcome rows, inserted through ``ferry.store.tables`` on the store's writer. Tests of what
reads them build the state they read without leasing and reporting through the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.sql import SqlStore

SOURCE_ROOT = "src:in"
DESTINATION_ROOT = "dst:out"


def _task(transfer_id: str, run: int, **values: Any) -> dict[str, Any]:
    row = {
        "transfer_id": transfer_id,
        "run": run,
        "scope": "default",
        "priority": 3,
        "state": TaskState.QUEUED.value,
        "attempts": 0,
        "max_attempts": 3,
        "bytes_done": 0,
        "cancel_requested": False,
        "folder": False,
        "objects": 1,
    }
    return row | values


async def number_run(store: SqlStore, transfer_id: str, run: int, next_object: int = 1) -> None:
    """Make the run numbered, as ``_run_row`` does for every run opened from now on."""
    key = (t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run)

    def write(conn: Connection) -> None:
        conn.execute(update(t.runs).where(key).values(next_object=next_object))

    await store._write(write)


async def set_counts(store: SqlStore, transfer_id: str, run: int, **counts: int) -> None:
    """Set the run's counters (objects), and mark it expanded."""
    key = (t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run)

    def write(conn: Connection) -> None:
        conn.execute(update(t.runs).where(key).values(expanded=True, **counts))

    await store._write(write)


async def insert_rows(store: SqlStore, table: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table``; the ids given to them when it is ``tasks``."""

    def write(conn: Connection) -> list[int]:
        if table is t.tasks:
            inserted = (conn.execute(insert(table).values(**row)) for row in rows)
            return [result.inserted_primary_key[0] for result in inserted]
        conn.execute(insert(table), list(rows))
        return []

    return await store._write(write)


async def add_single(
    store: SqlStore, transfer_id: str, run: int, number: int, **values: Any
) -> int:
    """A single task for object ``number`` (its file ``f{number}``); its id."""
    row = _task(
        transfer_id,
        run,
        object=number,
        source=f"{SOURCE_ROOT}/f{number}",
        destination=f"{DESTINATION_ROOT}/f{number}",
        size=values.pop("size", 10),
    )
    [task_id] = await insert_rows(store, t.tasks, [row | values])
    return task_id


def listed(first: int, count: int, size: int = 4096) -> list[list[Any]]:
    """A chunk list of ``count`` objects: ``d/f{number}`` of ``size`` bytes each."""
    return [[f"d/f{first + i:07d}", size] for i in range(count)]


async def add_chunk(
    store: SqlStore, transfer_id: str, run: int, first: int, objects: list[list[Any]]
) -> None:
    """The chunk list whose first object is numbered ``first``."""
    row = {
        "transfer_id": transfer_id,
        "run": run,
        "first": first,
        "count": len(objects),
        "size": sum(size for _, size in objects),
        "objects": json.dumps(objects),
    }
    await insert_rows(store, t.chunks, [row])


async def add_carrier(
    store: SqlStore,
    transfer_id: str,
    run: int,
    origin: int,
    count: int,
    members: list[int] | None = None,
    **values: Any,
) -> int:
    """A carrier of list ``origin`` (of ``count`` objects), of ``members`` (None: all); its
    id."""
    carried = list(range(count)) if members is None else members
    row = _task(
        transfer_id,
        run,
        object=origin + min(carried),
        objects=len(carried),
        origin=origin,
        members=None if members is None else sorted(members),
        source=SOURCE_ROOT,
        destination=DESTINATION_ROOT,
        size=4096 * len(carried),
    )
    [task_id] = await insert_rows(store, t.tasks, [row | values])
    return task_id


def outcome(
    transfer_id: str,
    run: int,
    number: int,
    attempt: int,
    state: str,
    finished_at: datetime,
    **values: Any,
) -> dict[str, Any]:
    """An outcome row: object ``number``'s attempt ``attempt`` ended, the object ``state``."""
    row = {
        "transfer_id": transfer_id,
        "run": run,
        "object": number,
        "attempt": attempt,
        "state": state,
        "bytes": 4096 if state == "DONE" else 0,
        "checksum": f"adler32:{number:08x}" if state == "DONE" else None,
        "error_class": None,
        "error": None,
        "agent": "agent-1",
        "started_at": finished_at,
        "finished_at": finished_at,
    }
    return row | values
