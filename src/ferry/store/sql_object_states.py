"""The objects of a run's chunks in one state (``Store.outcomes`` with a state), found through
what holds that state rather than by walking every object up to the page.

An object of a chunk is in a final state (DONE, SKIPPED, FAILED, CANCELED) when its latest
outcome is; otherwise it is in its latest carrier's state (QUEUED, WAITING, PAUSED, ACTIVE,
CANCELED). So the objects in a final state are among those with an outcome in it, found by
the outcomes' key after the cursor (FAILED by ``ix_outcomes_failed``); the others are among
the members of the carriers in it, found by ``(transfer_id, run, origin)`` a few chunk lists
at a time; a CANCELED object is either. Each candidate is then built as a page shows it and
kept when it is in the state, so the result is the unfiltered pages' objects in that state, in
number order.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import RunObject
from ferry.store.sql_chunk_objects import (
    Chunk,
    chunk_objects,
    chunks_holding,
    covering_first,
    fill_carriers,
)
from ferry.store.sql_outcome_rows import RunKey, outcomes_in

# States an object takes from an outcome, and states it takes from its carrier.
_BY_OUTCOME = frozenset({TaskState.DONE, TaskState.SKIPPED, TaskState.FAILED, TaskState.CANCELED})
_BY_CARRIER = frozenset(
    {TaskState.QUEUED, TaskState.WAITING, TaskState.PAUSED, TaskState.ACTIVE, TaskState.CANCELED}
)
_FIRST_LISTS = 4  # chunk lists with a carrier in the state read first; doubled while too few


def chunk_objects_in_state(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState
) -> list[RunObject]:
    """Up to ``limit`` objects of the run's chunks in ``state`` numbered above ``after``, in
    number order."""
    found: dict[int, RunObject] = {}
    if state in _BY_OUTCOME:
        found.update((o.number, o) for o in _by_outcome(conn, key, after, limit, state))
    if state in _BY_CARRIER:
        found.update((o.number, o) for o in _by_carrier(conn, key, after, limit, state))
    return [found[number] for number in sorted(found)[:limit]]


def _by_outcome(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState
) -> list[RunObject]:
    """Objects in ``state`` among those with an outcome in it, a page of them at a time."""
    found: list[RunObject] = []
    while len(found) < limit:
        rows = {row[0]: row for row in outcomes_in(conn, key, state.value, after, limit)}
        numbers = list(rows)
        places = chunks_holding(conn, key, numbers)
        found += [obj for obj in chunk_objects(conn, key, places, rows) if obj.state is state]
        if len(numbers) < limit:
            break
        after = numbers[-1]
    return found[:limit]


def _by_carrier(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState
) -> list[RunObject]:
    """Objects in ``state`` among those whose latest carrier is in it: the chunk lists with a
    carrier in ``state``, from the one that would hold ``after + 1`` on, a few at a time."""
    c, ch = t.tasks.c, t.chunks.c
    start = covering_first(conn, key, after)
    lowest, batch = (start if start is not None else after + 1), _FIRST_LISTS
    found: list[RunObject] = []
    while len(found) < limit:
        origins = list(
            conn.execute(
                select(c.origin)
                .where(key.of(t.tasks), c.origin >= lowest, t.task_state_is(state.value))
                .distinct()
                .order_by(c.origin)
                .limit(batch)
            ).scalars()
        )
        if not origins:
            break
        lists = select(ch.first, ch.count).where(key.of(t.chunks), ch.first.in_(origins))
        counts = dict(conn.execute(lists).all())
        chunks = [Chunk(first) for first in origins]
        fill_carriers(conn, key, chunks)
        places = [
            (chunk.first + offset, chunk)
            for chunk in chunks
            for offset in range(max(0, after + 1 - chunk.first), counts[chunk.first])
            if chunk.carrier_of(offset).state is state
        ]
        found += [obj for obj in chunk_objects(conn, key, places) if obj.state is state]
        if len(origins) < batch:
            break
        lowest, batch = origins[-1] + 1, batch * 2
    return found[:limit]
