"""Tasks in SQL: leasing, results, lease expiry and retries (the agent protocol's store side)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.types import NullType

from ferry.domain.channels import ChannelMap, ChannelState
from ferry.domain.states import TaskState, check_task_transition
from ferry.store import tables as t
from ferry.store.abc import TaskChange, TaskResult
from ferry.store.sql_base import SqlBase, Unindexed
from ferry.store.sql_bulk import BulkStatement, db_time, execute_many
from ferry.store.sql_dispatch import channel_from_row
from ferry.store.sql_links import LinkCounts
from ferry.store.sql_pauses import PAUSE_STOPPED, park_paused, stopped_by_pause

RETRY_BASE = timedelta(seconds=10)
RETRY_CAP = timedelta(minutes=10)

# A state's text as stored, looked up: reading an enum member's ``value`` is a descriptor call.
_VALUE = {state: state.value for state in TaskState}

_QUEUED = TaskState.QUEUED

_COUNTED = {
    TaskState.DONE: "done",
    TaskState.SKIPPED: "skipped",
    TaskState.FAILED: "failed",
    TaskState.CANCELED: "canceled",
}

# A task that has moved its object (DONE, SKIPPED) is its own last attempt: its row keeps the
# agent (lease_agent), when the attempt began (leased_at), when it ended, its bytes and sum. An
# attempt that did not end the object so (failed, lost, stopped, given back) gets a row of
# ``attempts`` with its error, as FTS3 keeps a file's retries beside the file: one write less
# per object moved (SQLite's own work per object 21.6 → 18.7 µs with foreign keys checked).
IN_ITS_ROW = frozenset({TaskState.DONE, TaskState.SKIPPED})


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff with full jitter between half and the whole step."""
    step: timedelta = min(RETRY_BASE * (2 ** max(attempt - 1, 0)), RETRY_CAP)
    return step * random.uniform(0.5, 1.0)


class RunCounter:
    """Deltas of a run's counters, applied in one statement per run."""

    def __init__(self) -> None:
        self._deltas: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)

    def add(
        self, transfer_id: str, run: int, state: TaskState, nbytes: int = 0, *, count: int = 1
    ) -> None:
        column = _COUNTED.get(state)
        if column is not None:
            self._deltas[(transfer_id, run)][column] += count
        if nbytes:
            self._deltas[(transfer_id, run)]["bytes"] += nbytes

    def grow(self, transfer_id: str, run: int, column: str, n: int) -> None:
        """Add ``n`` to another of the run's counters (``total``, ``size_total``)."""
        if n:
            self._deltas[(transfer_id, run)][column] += n

    def apply(self, conn: Connection, now: datetime | None = None) -> None:
        """Add the deltas; ``now``, when given, is when these objects ended."""
        for (transfer_id, run), delta in self._deltas.items():
            values: dict[str, Any] = {name: t.runs.c[name] + n for name, n in delta.items()}
            if now is not None and any(name in _COUNTED.values() for name in delta):
                values["last_result_at"] = now
            conn.execute(
                update(t.runs)
                .where((t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run))
                .values(**values)
            )


class TasksMixin(SqlBase):
    async def record_results(
        self, agent_id: str, results: Iterable[TaskResult]
    ) -> list[TaskChange]:
        by_id = {r.task_id: r for r in results}
        if not by_id:
            return []
        return await self._write(self._record_results, agent_id, by_id, self.clock())

    def _record_results(
        self, conn: Connection, agent_id: str, by_id: dict[int, TaskResult], now: datetime
    ) -> list[TaskChange]:
        held = self._still_held(conn, agent_id, by_id)
        unstarted = [row for row in held if not _began(by_id[row.id])]
        changes = []
        if unstarted:
            changes = self._unstarted(conn, unstarted, by_id, now)
            never = {row.id for row in unstarted}
            held = [row for row in held if row.id not in never]
        if held:
            changes += self._apply_results(conn, agent_id, held, by_id, now)
        park_paused(conn, ((c.transfer_id, c.task_id) for c in changes if c.state is _QUEUED))
        return changes

    def _unstarted(
        self, conn: Connection, rows: list[HeldRow], by_id: dict[int, TaskResult], now: datetime
    ) -> list[TaskChange]:
        """Tasks whose copy never began, as if never leased (no attempt is counted or kept):
        CANCELED when a user canceled them, QUEUED again otherwise (the agent is stopping, the
        channel was stopped). One canceled showed an attempt 1 that had started."""
        canceled = [row for row in rows if row.cancel_requested]
        released = [row for row in rows if not row.cancel_requested]
        execute_many(conn, _RELEASE, [(r.id, r.lease_token) for r in released])
        ended_at = db_time(conn.dialect, now)
        why = [(r.id, r.lease_token, ended_at, by_id[r.id].error or "canceled") for r in canceled]
        execute_many(conn, _CANCEL_UNSTARTED, why)
        counter = RunCounter()
        for row in canceled:
            counter.add(row.transfer_id, row.run, TaskState.CANCELED)
        counter.apply(conn, now)
        return [_change(r, TaskState.QUEUED) for r in released] + [
            _change(r, TaskState.CANCELED) for r in canceled
        ]

    def _apply_results(
        self,
        conn: Connection,
        agent_id: str,
        held: list[HeldRow],
        by_id: dict[int, TaskResult],
        now: datetime,
    ) -> list[TaskChange]:
        """Results of started attempts, each kept as an attempt. One stopped by its channel
        (STOPPED) or by its agent's shutdown (RELEASED) is QUEUED again at once, and that
        attempt does not use up one of the object's retries."""
        stopped = self._stopped(conn, held, by_id)
        interrupted = set(stopped) | {
            row.id
            for row in held
            if by_id[row.id].state is TaskState.QUEUED and not row.cancel_requested
        }
        ended_at = db_time(conn.dialect, now)
        updates: list[tuple[Any, ...]] = []
        retries: list[tuple[Any, ...]] = []
        attempts, changes, counter, links = [], [], RunCounter(), LinkCounts()
        for row in held:
            result = by_id[row.id]
            ended = None
            if row.id in interrupted:
                state, not_before = TaskState.QUEUED, None
                ended = "RELEASED" if result.state is TaskState.QUEUED else "STOPPED"
                if ended == "STOPPED":  # the agent saw a cancel; it was a channel's or pause's
                    result = result._replace(error=stopped[row.id], error_class="stopped")
            else:
                state, not_before = self._next_state(row, result, now)
            counter.add(
                row.transfer_id, row.run, state, result.bytes if state is TaskState.DONE else 0
            )
            if not_before is None:
                updates.append(_task_update(row.id, result, state, ended_at, agent_id))
            else:  # a retry's backoff: the one time that is not the batch's
                values = _task_update(row.id, result, state, ended_at, agent_id)
                retries.append((*values, db_time(conn.dialect, not_before)))
            changes.append(_change(row, state, result.error, result.bytes))
            _count_link(links, row, result, state, interrupted=row.id in interrupted)
            if ended is not None or state not in IN_ITS_ROW:
                attempts.append(_attempt(row, agent_id, result, ended_at, ended))
        execute_many(conn, _RESULT_UPDATE, updates)
        execute_many(conn, _RETRY_UPDATE, retries)
        if interrupted:
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id.in_(interrupted))
                .values(max_attempts=t.tasks.c.max_attempts + 1)
            )
        execute_many(conn, _ATTEMPT_INSERT, attempts)
        counter.apply(conn, now)
        _add_agent_statistics(conn, agent_id, [by_id[row.id] for row in held])
        links.write(conn, agent_id)
        return changes

    def _still_held(
        self, conn: Connection, agent_id: str, by_id: dict[int, TaskResult]
    ) -> list[HeldRow]:
        rows = held_rows(conn, _HELD_BY, {"agent": agent_id, "ids": list(by_id)})
        return [row for row in rows if row.lease_token == by_id[row.id].lease]

    def _stopped(
        self, conn: Connection, rows: list[HeldRow], by_id: dict[int, TaskResult]
    ) -> dict[int, str]:
        """Tasks that stopped because their channel was stopped or their transfer paused with
        its copies stopped, and why: they go back to QUEUED (PAUSED, while paused)."""
        candidates = [
            row
            for row in rows
            if by_id[row.id].state is TaskState.CANCELED and not row.cancel_requested
        ]
        if not candidates:
            return {}
        stopped = self._stopped_pairs(
            conn, {(r.source_site, r.destination_site) for r in candidates}
        )
        paused = stopped_by_pause(conn, {r.transfer_id for r in candidates})
        why = {r.id: PAUSE_STOPPED for r in candidates if r.transfer_id in paused}
        why.update(
            (r.id, CHANNEL_STOPPED)
            for r in candidates
            if (r.source_site, r.destination_site) in stopped
        )
        return why

    def _stopped_pairs(self, conn: Connection, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        rows = conn.execute(select(t.channels)).all()
        channels = ChannelMap(channel_from_row(r) for r in rows)
        return {
            pair
            for pair in pairs
            if (channel := channels.resolve(*pair)) is not None
            and channel.state is ChannelState.STOPPED
        }

    def _next_state(
        self, row: HeldRow, result: TaskResult, now: datetime
    ) -> tuple[TaskState, datetime | None]:
        if row.cancel_requested and result.state in (TaskState.FAILED, TaskState.QUEUED):
            return TaskState.CANCELED, None
        if result.state is TaskState.CANCELED and not row.cancel_requested:
            # Stopped by its agent (shutting down), not by a user: the object still has to move.
            result = result._replace(state=TaskState.FAILED, retryable=True)
        if result.state is not TaskState.FAILED:
            check_task_transition(TaskState.ACTIVE, result.state)
            return result.state, None
        if result.retryable and row.attempts < row.max_attempts:
            return TaskState.WAITING, now + retry_delay(row.attempts)
        return TaskState.FAILED, None

    async def reap_expired_leases(self, now: datetime) -> int:
        expired = t.task_state_is(TaskState.ACTIVE.value) & (t.tasks.c.lease_expires_at < now)
        return await self._write(self._requeue_leases, expired, "lease expired")

    def _requeue_leases(self, conn: Connection, where: ColumnElement[bool], why: str) -> int:
        """ACTIVE tasks matching ``where`` lose their lease: QUEUED again while attempts are left,
        FAILED otherwise, CANCELED if a cancel was asked. The lost attempt is recorded."""
        rows = held_rows(conn, leased_rows(where))
        if not rows:
            return 0
        now = self.clock()
        ended_at = db_time(conn.dialect, now)
        updates, attempts, counter = [], [], RunCounter()
        for row in rows:
            lost = TaskResult(
                row.id, row.lease_token, TaskState.FAILED, error_class="transient", error=why
            )
            state = (
                TaskState.CANCELED
                if row.cancel_requested
                else (TaskState.QUEUED if row.attempts < row.max_attempts else TaskState.FAILED)
            )
            counter.add(row.transfer_id, row.run, state)
            updates.append(_task_update(row.id, lost, state, ended_at, None))
            attempts.append(_attempt(row, row.lease_agent, lost, ended_at, ended="LOST"))
        execute_many(conn, _RESULT_UPDATE, updates)
        execute_many(conn, _ATTEMPT_INSERT, attempts)
        counter.apply(conn, now)
        park_paused(conn, ((row.transfer_id, row.id) for row in rows))
        return len(rows)

    async def requeue_waiting(self, now: datetime) -> int:
        return await self._write(self._requeue_waiting, now)

    def _requeue_waiting(self, conn: Connection, now: datetime) -> int:
        c = t.tasks.c
        ready = conn.execute(
            update(t.tasks)
            .where(t.task_state_is(TaskState.WAITING.value) & (c.not_before <= now))
            .values(state=TaskState.QUEUED.value, not_before=None)
            .returning(c.transfer_id, c.id)
        ).all()
        parked = park_paused(conn, ((row.transfer_id, row.id) for row in ready))
        return len(ready) - parked


class HeldRow(NamedTuple):
    """An ACTIVE task's row as ``leased_rows`` reads it, as a plain tuple: a batch's results
    read a dozen of its fields each, and a field of a ``Row`` read by name costs fifty times
    one of a tuple."""

    id: int
    transfer_id: str
    run: int
    scope: str
    source_site: str
    destination_site: str
    attempts: int
    max_attempts: int
    cancel_requested: bool
    lease_agent: str  # an ACTIVE task's lease is always set
    lease_token: str
    leased_at: Any  # last, as the database stores it


def _change(row: HeldRow, state: TaskState, error: str | None = None, moved: int = 0) -> TaskChange:
    """What ``record_results`` returns for a row: ``moved`` is the bytes its attempt moved."""
    return TaskChange(
        row.id,
        row.transfer_id,
        row.run,
        state,
        error,
        scope=row.scope,
        source_site=row.source_site,
        destination_site=row.destination_site,
        bytes=moved,
    )


def leased_rows(where: ColumnElement[bool], fields: Sequence[str] = HeldRow._fields) -> Select[Any]:
    """The ``fields`` of ACTIVE tasks that applying a result needs (``leased_at`` last, as
    ``HeldRow`` and ``sql_chunks.CarrierRow`` have it). ``leased_at`` is read as the
    database stores it: it is only copied into the attempt. The rows are locked (PostgreSQL):
    a report and an expiry of the same lease, on two servers, must not both record an attempt
    and count the object; the second waits, then finds the task no longer ACTIVE. (SQLite has
    one writer at a time.)"""
    c = t.tasks.c
    columns = [c[name] for name in fields if name != "leased_at"]
    return (
        select(*columns, type_coerce(c.leased_at, NullType()).label("leased_at"))
        .where(where & t.task_state_is(TaskState.ACTIVE.value))
        # Every locker takes its rows in one order: no deadlock between two. (Not read from the
        # primary key on SQLite: it scanned the table in that order instead of the index.)
        .order_by(Unindexed(c.id))
        .with_for_update()
    )


def held_rows(
    conn: Connection, statement: Select[Any], parameters: dict[str, Any] | None = None
) -> list[HeldRow]:
    """The rows of a ``leased_rows`` statement."""
    return list(map(HeldRow._make, conn.execute(statement, parameters).fetchall()))


# The tasks of a report still leased to its agent: made once, given the ids when run.
_HELD_BY = leased_rows(
    (t.tasks.c.lease_agent == bindparam("agent"))
    & t.tasks.c.id.in_(bindparam("ids", expanding=True))
)


# One statement for every result of a batch (executemany); the lease and state in the WHERE
# make it a compare-and-set: a row that changed hands meanwhile is left alone.
_RESULT_WHERE = (
    (t.tasks.c.id == bindparam("b_id"))
    & (t.tasks.c.lease_token == bindparam("b_lease"))
    & t.task_state_is(TaskState.ACTIVE.value)
)
_RESULT_VALUES: dict[str, Any] = {
    "state": bindparam("b_state"),
    "bytes_done": bindparam("b_bytes"),
    "checksum": bindparam("b_checksum"),
    "error_class": bindparam("b_error_class"),
    "error": bindparam("b_error"),
    "finished_at": bindparam("b_finished_at"),
    "lease_agent": bindparam("b_agent"),  # kept when the task is its own last attempt
    "lease_token": None,
    "lease_expires_at": None,
    "replica": bindparam("b_replica"),  # the place the attempt read from (replicas only)
}
_RESULT_NAMES = (
    "b_id",
    "b_lease",
    "b_state",
    "b_bytes",
    "b_checksum",
    "b_error_class",
    "b_error",
    "b_finished_at",
    "b_agent",
    "b_replica",
)
# An ACTIVE task's not_before is empty, and stays so unless it waits for a retry: a statement
# that set it anyway rewrote its index entry for every result (bench/findings.md, "Indexes of
# one state").
_RESULT_UPDATE = BulkStatement(
    update(t.tasks).where(_RESULT_WHERE).values(_RESULT_VALUES), _RESULT_NAMES
)
_RETRY_UPDATE = BulkStatement(
    update(t.tasks)
    .where(_RESULT_WHERE)
    .values({**_RESULT_VALUES, "not_before": bindparam("b_not_before")}),
    (*_RESULT_NAMES, "b_not_before"),
)


# A task whose copy never began is as if never leased: the attempt is not counted.
_NEVER_BEGUN: dict[str, Any] = {
    "attempts": t.tasks.c.attempts - 1,
    "lease_agent": None,
    "lease_token": None,
    "lease_expires_at": None,
}
# Given back unstarted (the agent is stopping, its channel stopped): QUEUED again.
_RELEASE = BulkStatement(
    update(t.tasks).where(_RESULT_WHERE).values(state=TaskState.QUEUED.value, **_NEVER_BEGUN),
    ("b_id", "b_lease"),
)
# Canceled before its copy began: CANCELED.
_CANCEL_UNSTARTED = BulkStatement(
    update(t.tasks)
    .where(_RESULT_WHERE)
    .values(
        state=TaskState.CANCELED.value,
        finished_at=bindparam("b_finished_at"),
        error_class="canceled",
        error=bindparam("b_error"),
        **_NEVER_BEGUN,
    ),
    ("b_id", "b_lease", "b_finished_at", "b_error"),
)


CHANNEL_STOPPED = "stopped while copying: its channel was stopped (it goes on when started)"


def _began(result: TaskResult) -> bool:
    """Whether the reported copy began. An agent says when it did not; a task given back
    with no error (as agents before that said it) did not either."""
    return result.started and not (result.state is TaskState.QUEUED and result.error is None)


_ATTEMPT_COLUMNS = (
    "task_id",
    "number",
    "agent",
    "started_at",
    "finished_at",
    "bytes",
    "state",
    "error_class",
    "error",
)
_ATTEMPT_INSERT = BulkStatement(
    insert(t.attempts).values({name: bindparam(name) for name in _ATTEMPT_COLUMNS}),
    _ATTEMPT_COLUMNS,
)


def _task_update(
    task_id: int, result: TaskResult, state: TaskState, ended_at: Any, agent_id: str | None
) -> tuple[Any, ...]:
    """The values of ``_RESULT_UPDATE`` (``_RETRY_UPDATE``'s but the last); the time as the
    database stores it."""
    return (
        task_id,
        result.lease,
        _VALUE[state],
        result.bytes,
        result.checksum,
        result.error_class,
        result.error,
        ended_at if state in _COUNTED else None,
        agent_id if state in IN_ITS_ROW else None,
        result.replica,
    )


def _attempt(
    row: HeldRow, agent_id: str | None, result: TaskResult, ended_at: Any, ended: str | None = None
) -> tuple[Any, ...]:
    """The values of ``_ATTEMPT_INSERT``; ``ended_at`` as the database stores it."""
    return (
        row.id,
        row.attempts,
        agent_id,
        row.leased_at,
        ended_at,
        result.bytes,
        ended or _VALUE[result.state],
        result.error_class,
        result.error,
    )


def _count_link(
    links: LinkCounts, row: HeldRow, result: TaskResult, state: TaskState, *, interrupted: bool
) -> None:
    """Count a result on its link: DONE moved its bytes; a failed attempt (to be retried or
    for good) counts against the link; one stopped, given back or skipped says nothing."""
    pair = (row.source_site, row.destination_site)
    if state is TaskState.DONE:
        links.add(pair, succeeded=1, moved=result.bytes - result.resumed)
    elif not interrupted and state in (TaskState.WAITING, TaskState.FAILED):
        links.add(pair, failed=1)


def _add_agent_statistics(conn: Connection, agent_id: str, results: list[TaskResult]) -> None:
    """Add a batch of results to the agent's statistics, in one statement."""
    ended = [r for r in results if r.state is not TaskState.QUEUED]  # given back: no verdict
    outcome = Counter(_OUTCOME_OF.get(r.state, "failed") for r in ended)
    # The bytes its copies moved: a resumed copy's kept bytes were moved by an earlier attempt.
    moved = sum(r.bytes - r.resumed for r in results if r.state is TaskState.DONE)
    a = t.agents.c
    conn.execute(
        update(t.agents)
        .where(a.id == agent_id)
        .values(
            succeeded=a.succeeded + outcome["succeeded"],
            failed=a.failed + outcome["failed"],
            canceled=a.canceled + outcome["canceled"],
            bytes=a.bytes + moved,
        )
    )


_OUTCOME_OF = {
    TaskState.DONE: "succeeded",
    TaskState.SKIPPED: "succeeded",
    TaskState.CANCELED: "canceled",
}
