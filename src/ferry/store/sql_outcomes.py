"""A run's objects as its outcomes show them (``Store.outcomes``): single tasks as they are,
and the objects of chunks from their lists, carriers and outcome rows (docs/small-files.md
§3, "GET /outcomes").

A run made before objects were numbered (``runs.next_object`` NULL) has single tasks only,
numbered by their ids. In a numbered run a page of ``limit`` objects after a cursor reads the
single tasks by ``(transfer_id, run, object)``, the heads of the chunk lists that cover the
page (their key; a head's columns come before the list itself, so the list is not read), then
only those lists, their carriers by ``(transfer_id, run, origin)`` and the page's outcomes by
their key: its cost follows the page, not the run (``sql_chunk_objects`` builds the objects of
chunks). A page in one state merges the single tasks in it with the objects of chunks that
``sql_object_states`` finds in it.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Row, select

from ferry.api.wire import INT64_MAX
from ferry.domain.locations import split_location
from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import Attempt, RunObject
from ferry.store.sql_base import SqlBase, all_rows
from ferry.store.sql_chunk_objects import (
    chunk_objects,
    chunks_holding,
    heads,
)
from ferry.store.sql_object_states import chunk_objects_in_state
from ferry.store.sql_outcome_rows import RunKey, outcomes_in
from ferry.store.sql_tasks import IN_ITS_ROW

_IN_ITS_ROW = frozenset(state.value for state in IN_ITS_ROW)


class OutcomesMixin(SqlBase):
    async def outcomes(
        self,
        transfer_id: str,
        run: int,
        *,
        after: int,
        limit: int,
        state: TaskState | None = None,
    ) -> list[RunObject]:
        return await self._reading(read_outcomes, RunKey(transfer_id, run), after, limit, state)


def read_outcomes(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState | None
) -> list[RunObject]:
    """``Store.outcomes`` on one connection (a reader's)."""
    if after >= INT64_MAX:  # nothing is numbered above it, and after + 1 fits no column
        return []
    numbered = conn.execute(
        select(t.runs.c.next_object).where(
            (t.runs.c.transfer_id == key.transfer_id) & (t.runs.c.number == key.run)
        )
    ).scalar()
    if numbered is None:
        return _unnumbered(conn, key, after, limit, state)
    if state is None:
        return _page(conn, key, after, limit)
    return _in_state(conn, key, after, limit, state)


# --- single tasks ---------------------------------------------------------------------------


def _unnumbered(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState | None
) -> list[RunObject]:
    """A run made before numbering: its tasks by id, as they always were read."""
    c = t.tasks.c
    page = select(t.tasks).where(key.of(t.tasks) & (c.id > after))
    if state is not None:
        page = page.where(c.state == state.value)
    rows = all_rows(conn, page.order_by(c.id).limit(limit))
    return _singles(conn, rows, numbered=False)


def _single_tasks(
    conn: Connection, key: RunKey, after: int, limit: int, *extra: ColumnElement[bool]
) -> list[Row[Any]]:
    """Up to ``limit`` single tasks of a numbered run after object ``after``, by number."""
    c = t.tasks.c
    page = select(t.tasks).where(key.of(t.tasks), c.object > after, c.origin.is_(None), *extra)
    return all_rows(conn, page.order_by(c.object).limit(limit))


def _singles(conn: Connection, rows: Sequence[Row[Any]], *, numbered: bool) -> list[RunObject]:
    """Single tasks with their attempts: the failed ones' rows of ``attempts``, and the one
    that moved the object from the task's own row (``IN_ITS_ROW``)."""
    ids = [r.id for r in rows]
    history: dict[int, list[Attempt]] = {i: [] for i in ids}
    if ids:
        a = t.attempts.c
        tried = select(t.attempts).where(a.task_id.in_(ids)).order_by(a.id)
        for row in all_rows(conn, tried):
            history[row.task_id].append(
                Attempt(
                    row.number,
                    row.agent,
                    row.started_at,
                    row.finished_at,
                    row.bytes,
                    row.error_class,
                    row.error,
                    row.state,
                )
            )
    return [_single(r, history[r.id], numbered) for r in rows]


def _single(row: Row[Any], tried: list[Attempt], numbered: bool) -> RunObject:
    # A task SKIPPED when its tree was listed (a link not followed) made no attempt.
    made = row.attempts > 0 and row.state in _IN_ITS_ROW
    if made and not any(a.number == row.attempts for a in tried):
        tried.append(_last_attempt(row))
    return RunObject(
        number=row.object if numbered else row.id,
        task_id=row.id,
        state=TaskState(row.state),
        source=split_location(row.source),
        destination=split_location(row.destination),
        size=row.size,
        bytes_done=row.bytes_done,
        checksum=row.checksum,
        attempts=row.attempts,
        error_class=row.error_class,
        error=row.error,
        agent=row.lease_agent if row.state == TaskState.ACTIVE.value else None,
        history=tried,
        replica=split_location(row.replica) if row.replica is not None else None,
    )


def _last_attempt(row: Row[Any]) -> Attempt:
    """The attempt that moved a task's object, kept in the task's own row (``IN_ITS_ROW``).
    A task finished before that was so has a row of ``attempts`` for it instead."""
    return Attempt(
        row.attempts,
        row.lease_agent,
        row.leased_at,
        row.finished_at,
        row.bytes_done,
        row.error_class,
        row.error,
        row.state,
    )


# --- objects of chunks ----------------------------------------------------------------------


def first_failed_outcome(conn: Connection, transfer_id: str, run: int) -> Failure | None:
    """The lowest-numbered FAILED object of the run's chunks (``ix_outcomes_failed``), its
    source from its outcome (or its chunk list, for a row written before 0016); None when no
    object of a chunk failed."""
    key = RunKey(transfer_id, run)
    rows = {row[0]: row for row in outcomes_in(conn, key, TaskState.FAILED.value, 0, 1)}
    if not rows:
        return None
    places = chunks_holding(conn, key, list(rows))
    [found] = chunk_objects(conn, key, places, rows)
    return Failure(found.number, str(found.source), found.error)


class Failure(NamedTuple):
    """A FAILED object: its number, its source (as text) and its error."""

    number: int
    source: str
    error: str | None


# --- pages ----------------------------------------------------------------------------------


def _page(conn: Connection, key: RunKey, after: int, limit: int) -> list[RunObject]:
    """The next ``limit`` objects after ``after``: single tasks and objects of chunks merged
    by number."""
    singles = _single_tasks(conn, key, after, limit)
    bound = singles[-1].object if len(singles) == limit else None
    carried = [(n, chunk) for chunk, held in heads(conn, key, after, bound, limit) for n in held]
    numbers = sorted([r.object for r in singles] + [n for n, _ in carried])
    last = numbers[limit - 1] if len(numbers) >= limit else INT64_MAX
    rows = [r for r in singles if r.object <= last]
    carried = [(n, chunk) for n, chunk in carried if n <= last]
    return _merged(_singles(conn, rows, numbered=True), chunk_objects(conn, key, carried), limit)


def _in_state(
    conn: Connection, key: RunKey, after: int, limit: int, state: TaskState
) -> list[RunObject]:
    """Objects in ``state`` after ``after``: the single tasks in it and the objects of chunks
    in it (``sql_object_states``), merged by number."""
    singles = _single_tasks(conn, key, after, limit, t.task_state_is(state.value))
    chunked = chunk_objects_in_state(conn, key, after, limit, state)
    return _merged(_singles(conn, singles, numbered=True), chunked, limit)


def _merged(singles: list[RunObject], chunked: list[RunObject], limit: int) -> list[RunObject]:
    """The first ``limit`` of two lists each in number order, merged by number."""
    return list(heapq.merge(singles, chunked, key=lambda obj: obj.number))[:limit]
