"""Carriers that lose their lease in SQL: expired, their agent lost or registered again, or
given back by an agent that leaves (docs/small-files.md, §3 "Lease expiry"); and the
temporary files their lost objects may have left."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, select, update

from ferry.domain.locations import split_location
from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import LostAttempt
from ferry.store.sql_base import Unindexed, all_rows
from ferry.store.sql_bulk import db_time, execute_many
from ferry.store.sql_chunks import (
    OUTCOME_INSERTS,
    CarrierRow,
    ChunksMixin,
    carrier_rows,
    list_sizes,
    locked_carriers,
    recorded,
)
from ferry.store.sql_failed_objects import name_failed_objects
from ferry.store.sql_pauses import queued_or_paused
from ferry.store.sql_tasks import RunCounter, TasksMixin

# The error class of an object's attempt that ended with its carrier's lease.
LOST_CLASS = "lost"
# A single task, not a carrier: a condition no index is searched for (the lease indexes are).
_SINGLE = Unindexed(t.tasks.c.origin).is_(None)


class ExpiryMixin(ChunksMixin, TasksMixin):
    def _requeue_leases(self, conn: Connection, where: ColumnElement[bool], why: str) -> int:
        """Single tasks as ``TasksMixin`` requeues them; each carrier's members not reported
        get a LOST outcome (uncounted) and the same row is QUEUED again with only them; with
        no attempts left they are FAILED (counted) and the row DONE; with a cancel asked they
        are counted canceled and the row CANCELED. Return how many rows lost their lease."""
        singles = super()._requeue_leases(conn, where & _SINGLE, why)
        carriers = locked_carriers(conn, carrier_rows(where))
        if carriers:
            self._lose(conn, carriers, why, self.clock())
        return singles + len(carriers)

    def _release_carriers(self, conn: Connection, agent_id: str) -> int:
        """The agent's carriers go back to the queue uncounted, their attempt not spent: whole
        when it never reported on one (it never received it), else narrowed to the members it
        did not report. Return how many."""
        carriers = locked_carriers(conn, carrier_rows(t.tasks.c.lease_agent == agent_id))
        for row in carriers:
            carried = row.carried
            known = recorded(conn, row, carried)
            unreported = [i for i in carried if i not in known]
            if unreported:
                _requeue(conn, row, unreported, row.attempts - 1)
            else:
                _end(conn, row, TaskState.DONE, known, self.clock())
        return len(carriers)

    def _lose(self, conn: Connection, rows: list[CarrierRow], why: str, now: datetime) -> None:
        ended_at = db_time(conn.dialect, now)
        outcomes, counter = [], RunCounter()
        for row in rows:
            carried = row.carried
            known = recorded(conn, row, carried)
            unreported = [i for i in carried if i not in known]
            if not unreported:  # every object reported, the end never came
                _end(conn, row, TaskState.DONE, known, now)
                continue
            final = row.attempts >= row.max_attempts and not row.cancel_requested
            state = "FAILED" if final else "LOST"
            outcomes += [_lost(row, i, state, why, ended_at) for i in unreported]
            if row.cancel_requested:
                counter.add(row.transfer_id, row.run, TaskState.CANCELED, count=len(unreported))
                _end(conn, row, TaskState.CANCELED, known, now)
            elif final:
                counter.add(row.transfer_id, row.run, TaskState.FAILED, count=len(unreported))
                _end(conn, row, TaskState.DONE, known, now)
            else:
                _requeue(conn, row, unreported, row.attempts)
        execute_many(conn, OUTCOME_INSERTS[conn.dialect.name], outcomes)
        name_failed_objects(conn, outcomes)
        counter.apply(conn, now)


def _lost(row: CarrierRow, offset: int, state: str, why: str, ended_at: Any) -> tuple[Any, ...]:
    """The outcome of an object whose carrier's lease ended before it was reported."""
    return (
        row.transfer_id,
        row.run,
        row.origin + offset,
        row.attempts,
        state,
        0,
        None,
        LOST_CLASS,
        why,
        row.lease_agent,
        row.leased_at,
        ended_at,
    )


def _lease_of(row: CarrierRow) -> ColumnElement[bool]:
    c = t.tasks.c
    return (
        (c.id == row.id)
        & (c.lease_token == row.lease_token)
        & t.task_state_is(TaskState.ACTIVE.value)
    )


def _requeue(conn: Connection, row: CarrierRow, offsets: list[int], attempts: int) -> None:
    """The carrier QUEUED again, carrying ``offsets`` only (all of its list: unchanged);
    PAUSED, while its transfer is paused."""
    whole = row.members is None and len(offsets) == row.objects
    members = None if whole else offsets
    sizes = list_sizes(conn, row)
    conn.execute(
        update(t.tasks)
        .where(_lease_of(row))
        .values(
            state=queued_or_paused(conn, row.transfer_id).value,
            members=members,
            objects=len(offsets),
            object=row.origin + offsets[0],
            size=sum(sizes[i] for i in offsets),
            attempts=attempts,
            bytes_done=0,
            lease_agent=None,
            lease_token=None,
            lease_expires_at=None,
        )
    )


def _end(
    conn: Connection, row: CarrierRow, state: TaskState, known: dict[int, Any], now: datetime
) -> None:
    """The carrier ended ``state``, with the objects it moved and their bytes."""
    moved = [n for s, n in known.values() if s in ("DONE", "SKIPPED")]
    conn.execute(
        update(t.tasks)
        .where(_lease_of(row))
        .values(
            state=state.value,
            objects=len(moved),
            bytes_done=sum(moved),
            finished_at=now,
            lease_token=None,
            lease_expires_at=None,
        )
    )


def lost_objects(conn: Connection, transfer_id: str, run: int) -> list[LostAttempt]:
    """The attempts of a run's chunked objects that ended with their carrier's lease: the
    destination of each from its chunk list and its carrier's root, tagged ``r{run}o{object}``
    as the agent names its temporary file."""
    o, ch, c = t.outcomes.c, t.chunks.c, t.tasks.c
    of_run = (o.transfer_id == transfer_id) & (o.run == run)
    lost = conn.execute(
        select(o.object, o.attempt).where(
            of_run
            & (
                t.outcome_state_is("LOST")
                | (t.outcome_state_is("FAILED") & (o.error_class == LOST_CLASS))
            )
        )
    ).all()
    if not lost:
        return []
    firsts = list(
        conn.execute(
            select(ch.first)
            .where((ch.transfer_id == transfer_id) & (ch.run == run))
            .order_by(ch.first)
        ).scalars()
    )
    origin_of = {n: firsts[bisect.bisect_right(firsts, n) - 1] for n, _ in lost}
    needed = sorted(set(origin_of.values()))
    lists = dict(
        conn.execute(
            select(ch.first, ch.objects).where(
                (ch.transfer_id == transfer_id) & (ch.run == run) & ch.first.in_(needed)
            )
        ).all()
    )
    carriers = all_rows(
        conn,
        select(c.origin, c.id, c.destination).where(
            (c.transfer_id == transfer_id) & (c.run == run) & c.origin.in_(needed)
        ),
    )
    root = {r.origin: (r.id, r.destination) for r in carriers}
    paths = {first: [p for p, _size in orjson.loads(text)] for first, text in lists.items()}
    return [
        _lost_attempt(root[origin_of[n]], paths[origin_of[n]][n - origin_of[n]], run, n, attempt)
        for n, attempt in lost
    ]


def _lost_attempt(
    carrier: tuple[int, str], relative: str, run: int, number: int, attempt: int
) -> LostAttempt:
    task_id, destination = carrier
    where = split_location(destination).child(relative)
    return LostAttempt(task_id, str(where), attempt, tag=f"r{run}o{number}")
