"""Chunks in SQL: the reports of carriers of small objects, one outcome per object and attempt
(docs/small-files.md, §3 "Reports, partial and final"). Their expiry is in ``sql_expiry``."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ferry.api.protocol import ChunkReport, ChunkResult, ReportedState
from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import ChunkResults, ChunkTally, TaskChange
from ferry.store.sql_base import SqlBase, Unindexed
from ferry.store.sql_bulk import BulkStatement, db_time, execute_many
from ferry.store.sql_failed_objects import name_failed_objects
from ferry.store.sql_links import LinkCounts
from ferry.store.sql_pauses import queued_or_paused
from ferry.store.sql_tasks import RunCounter, leased_rows, retry_delay


class CarrierRow(NamedTuple):
    """An ACTIVE carrier's row as ``carrier_rows`` reads it, as a plain tuple."""

    id: int
    transfer_id: str
    run: int
    scope: str
    source_site: str
    destination_site: str
    priority: int
    source: str
    destination: str
    attempts: int
    max_attempts: int
    cancel_requested: bool
    lease_agent: str
    lease_token: str
    origin: int
    members: list[int] | None
    objects: int
    leased_at: Any  # last, as the database stores it: only copied into outcomes

    @property
    def carried(self) -> list[int]:
        """The offsets into its chunk list of the objects it carries, in order."""
        return sorted(self.members) if self.members is not None else list(range(self.objects))


def carrier_rows(where: ColumnElement[bool]) -> Select[Any]:
    """ACTIVE carriers matching ``where``, locked (PostgreSQL) in one order, as
    ``sql_tasks.leased_rows`` locks single tasks: a report and an expiry of one lease, on two
    servers, are serialized, and the second finds the row changed or the objects recorded."""
    return leased_rows(where & Unindexed(t.tasks.c.origin).is_not(None), CarrierRow._fields)


def locked_carriers(
    conn: Connection, statement: Select[Any], parameters: dict[str, Any] | None = None
) -> list[CarrierRow]:
    return list(map(CarrierRow._make, conn.execute(statement, parameters).fetchall()))


_HELD_CARRIERS = carrier_rows(
    (t.tasks.c.lease_agent == bindparam("agent"))
    & t.tasks.c.id.in_(bindparam("ids", expanding=True))
)

# The outcomes a carrier's objects already have at its attempt, between two object numbers.
_o = t.outcomes.c
_RECORDED = select(_o.object, _o.state, _o.bytes).where(
    (_o.transfer_id == bindparam("transfer"))
    & (_o.run == bindparam("run"))
    & (_o.attempt == bindparam("attempt"))
    & _o.object.between(bindparam("lo"), bindparam("hi"))
)

OUTCOME_COLUMNS = (
    "transfer_id",
    "run",
    "object",
    "attempt",
    "state",
    "bytes",
    "checksum",
    "error_class",
    "error",
    "agent",
    "started_at",
    "finished_at",
)
_OUTCOME_VALUES: dict[str, Any] = {name: bindparam(name) for name in OUTCOME_COLUMNS}
# One outcome per object and attempt: a second server's copy of a row is left out.
OUTCOME_INSERTS = {
    "sqlite": BulkStatement(
        sqlite_insert(t.outcomes).values(_OUTCOME_VALUES).on_conflict_do_nothing(),
        OUTCOME_COLUMNS,
    ),
    "postgresql": BulkStatement(
        postgresql_insert(t.outcomes).values(_OUTCOME_VALUES).on_conflict_do_nothing(),
        OUTCOME_COLUMNS,
    ),
}

# A carrier ended: every object it carried is accounted for. It keeps its agent, as a DONE
# task does, and the objects it moved and their bytes (the agents' throughput and the links'
# done counts read them).
_END_CARRIER = BulkStatement(
    update(t.tasks)
    .where(
        (t.tasks.c.id == bindparam("b_id"))
        & (t.tasks.c.lease_token == bindparam("b_lease"))
        & t.task_state_is(TaskState.ACTIVE.value)
    )
    .values(
        state=bindparam("b_state"),
        objects=bindparam("b_objects"),
        bytes_done=bindparam("b_bytes"),
        finished_at=bindparam("b_finished_at"),
        lease_token=None,
        lease_expires_at=None,
    ),
    ("b_id", "b_lease", "b_state", "b_objects", "b_bytes", "b_finished_at"),
)

_COUNTED_OUTCOME = {
    "DONE": TaskState.DONE,
    "SKIPPED": TaskState.SKIPPED,
    "FAILED": TaskState.FAILED,
    "CANCELED": TaskState.CANCELED,
}


def recorded(conn: Connection, row: CarrierRow, carried: Sequence[int]) -> dict[int, Any]:
    """The outcomes the objects of ``carried`` already have at the carrier's attempt, by
    offset: (state, bytes)."""
    parameters = {
        "transfer": row.transfer_id,
        "run": row.run,
        "attempt": row.attempts,
        "lo": row.origin + carried[0],
        "hi": row.origin + carried[-1],
    }
    return {
        number - row.origin: (state, n) for number, state, n in conn.execute(_RECORDED, parameters)
    }


def list_sizes(conn: Connection, row: CarrierRow) -> list[int]:
    """The listed size of each object of the carrier's chunk list."""
    ch = t.chunks.c
    text = conn.execute(
        select(ch.objects).where(
            (ch.transfer_id == row.transfer_id) & (ch.run == row.run) & (ch.first == row.origin)
        )
    ).scalar_one()
    return [size for _path, size in orjson.loads(text)]


def new_carrier(
    conn: Connection, row: CarrierRow, offsets: list[int], state: TaskState, **values: Any
) -> None:
    """A new carrier of ``offsets`` of ``row``'s chunk list, in ``state``: its retries, or the
    objects given back. ``values`` are more of its columns (``attempts``, ``not_before``)."""
    sizes = list_sizes(conn, row)
    conn.execute(
        insert(t.tasks).values(
            transfer_id=row.transfer_id,
            run=row.run,
            scope=row.scope,
            source_site=row.source_site,
            destination_site=row.destination_site,
            priority=row.priority,
            state=state.value,
            source=row.source,
            destination=row.destination,
            size=sum(sizes[i] for i in offsets),
            max_attempts=row.max_attempts,
            cancel_requested=False,
            bytes_done=0,
            folder=False,
            object=row.origin + offsets[0],
            objects=len(offsets),
            origin=row.origin,
            members=offsets,
            **values,
        )
    )


class _Report:
    """One carrier's report being applied: its fresh outcomes and what they count."""

    def __init__(self, row: CarrierRow, ended_at: Any) -> None:
        self.row = row
        self.outcomes: list[tuple[Any, ...]] = []
        self.counts: Counter[str] = Counter()
        self.retried: list[int] = []
        self.moved = 0
        self._head = (row.transfer_id, row.run)
        self._tail = (row.lease_agent, row.leased_at, ended_at)

    def add(self, result: ChunkResult) -> None:
        """Keep ``result`` as an outcome. Per object of every chunk: kept to a dictionary
        look-up and one tuple for a moved object."""
        offset, reported, nbytes, checksum, error_class, error, retryable = result
        state = _MOVED.get(reported) or self._outcome(reported, retryable)
        row = self.row
        outcome = (row.origin + offset, row.attempts, state, nbytes, checksum, error_class, error)
        self.outcomes.append(self._head + outcome + self._tail)
        if state == "WAITING":
            self.retried.append(offset)

    def counted(self) -> None:
        """Count the kept outcomes by state, and the bytes of those that moved."""
        self.counts.update(outcome[4] for outcome in self.outcomes)
        self.moved = sum(o[5] for o in self.outcomes if o[4] in ("DONE", "SKIPPED"))

    def _outcome(self, reported: ReportedState, retryable: bool) -> str:
        row = self.row
        if row.cancel_requested:
            return "CANCELED"
        # Failed (an object stopped but not canceled by a user was given back before this).
        return "WAITING" if retryable and row.attempts < row.max_attempts else "FAILED"


_MOVED = {ReportedState.DONE: "DONE", ReportedState.SKIPPED: "SKIPPED"}
# Objects a report gives back, their attempt unspent: the agent stopped them unstarted
# (RELEASED) or, when nobody canceled the carrier, because its channel was stopped (CANCELED:
# the agent is told to stop either way; it does not know which).
_GIVEN_BACK = frozenset({ReportedState.RELEASED})
_STOPPED_OR_GIVEN_BACK = frozenset({ReportedState.RELEASED, ReportedState.CANCELED})


class ChunksMixin(SqlBase):
    async def record_chunk_results(
        self, agent_id: str, reports: Sequence[ChunkReport]
    ) -> ChunkResults:
        if not reports:
            return ChunkResults(0, 0, [])
        return await self._write(self._record_chunks, agent_id, reports, self.clock())

    def _record_chunks(
        self, conn: Connection, agent_id: str, reports: Sequence[ChunkReport], now: datetime
    ) -> ChunkResults:
        of_task: dict[int, list[ChunkReport]] = defaultdict(list)
        for report in reports:
            of_task[report.task].append(report)
        held = locked_carriers(conn, _HELD_CARRIERS, {"agent": agent_id, "ids": list(of_task)})
        ended_at = db_time(conn.dialect, now)
        counter, tallies = RunCounter(), []
        applied: list[_Report] = []
        outcomes: list[tuple[Any, ...]] = []
        ends: list[tuple[Any, ...]] = []
        for row in held:
            mine = [r for r in of_task[row.id] if r.lease == row.lease_token]
            if not mine:
                continue
            done, end = self._apply(conn, row, mine, ended_at, now)
            applied.append(done)
            outcomes += done.outcomes
            if end is not None:
                ends.append(end)
            tallies.append(_tally(done, end, counter))
        execute_many(conn, OUTCOME_INSERTS[conn.dialect.name], outcomes)
        name_failed_objects(conn, [o for r in applied if r.counts["FAILED"] for o in r.outcomes])
        execute_many(conn, _END_CARRIER, ends)
        counter.apply(conn, now)
        add_agent_counts(conn, agent_id, applied)
        LinkCounts().add_chunks(tallies).write(conn, agent_id)
        accepted = sum(len(r.outcomes) for r in applied)
        given = sum(len(r.results) for r in reports)
        return ChunkResults(accepted, given - accepted, tallies)

    def _apply(
        self,
        conn: Connection,
        row: CarrierRow,
        reports: list[ChunkReport],
        ended_at: Any,
        now: datetime,
    ) -> tuple[_Report, tuple[Any, ...] | None]:
        """One carrier's reports under its lock: the fresh outcomes, its retry carrier, and
        its end (the values of ``_END_CARRIER``) when one of them ended it."""
        carried = row.carried
        known = recorded(conn, row, carried)
        members = set(carried)
        report = _Report(row, ended_at)
        given_back = _GIVEN_BACK if row.cancel_requested else _STOPPED_OR_GIVEN_BACK
        for result in (result for r in reports for result in r.results):
            offset = result[0]
            fresh = offset in members and offset not in known
            if not fresh or result[1] in given_back:
                continue  # not its own, recorded already, or given back (the rest, below)
            known[offset] = ("", 0)
            report.add(result)
        report.counted()
        if report.retried:
            not_before = now + retry_delay(row.attempts)
            new_carrier(
                conn,
                row,
                sorted(report.retried),
                TaskState.WAITING,
                attempts=row.attempts,
                not_before=not_before,
            )
        last = next((r for r in reports if r.ended), None)
        if last is None:
            return report, None
        state = self._rest(conn, row, [i for i in carried if i not in known], report)
        earlier = [n for s, n in known.values() if s in ("DONE", "SKIPPED")]
        objects = report.counts["DONE"] + report.counts["SKIPPED"] + len(earlier)
        moved = report.moved + sum(earlier)
        return report, (row.id, row.lease_token, state.value, objects, moved, ended_at)

    def _rest(
        self,
        conn: Connection,
        row: CarrierRow,
        unreported: list[int],
        report: _Report,
    ) -> TaskState:
        """What the members never reported become when the carrier ends, and the carrier's
        end state: canceled with it when a user canceled it (CANCELED), or given back to a new
        QUEUED carrier (PAUSED, while its transfer is): the agent stopped them for its own
        stop, its channel's or its transfer's pause."""
        if not unreported:
            return TaskState.DONE
        if row.cancel_requested:
            report.counts["REST_CANCELED"] += len(unreported)
            return TaskState.CANCELED
        # Given back unstarted: as if never leased, their attempt not spent.
        back = queued_or_paused(conn, row.transfer_id)
        new_carrier(conn, row, unreported, back, attempts=row.attempts - 1)
        return TaskState.DONE


def _tally(report: _Report, end: tuple[Any, ...] | None, counter: RunCounter) -> ChunkTally:
    """The run's counters and the monitoring's tally of a carrier's report."""
    row, counts = report.row, report.counts
    for state, count in counts.items():
        counted = _COUNTED_OUTCOME.get(state)
        if counted is not None:
            counter.add(row.transfer_id, row.run, counted, count=count)
    if counts["REST_CANCELED"]:
        counter.add(row.transfer_id, row.run, TaskState.CANCELED, count=counts["REST_CANCELED"])
    counter.grow(row.transfer_id, row.run, "bytes", report.moved)
    state = TaskState.ACTIVE if end is None else TaskState(end[2])
    change = TaskChange(
        row.id,
        row.transfer_id,
        row.run,
        state,
        scope=row.scope,
        source_site=row.source_site,
        destination_site=row.destination_site,
        bytes=report.moved,
    )
    return ChunkTally(
        change,
        done=counts["DONE"],
        skipped=counts["SKIPPED"],
        failed=counts["FAILED"],
        retried=counts["WAITING"],
        canceled=counts["CANCELED"] + counts["REST_CANCELED"],
        bytes=report.moved,
    )


def add_agent_counts(conn: Connection, agent_id: str, reports: list[_Report]) -> None:
    """Add the objects of carriers' reports to the agent's statistics, in one statement."""
    if not reports:
        return
    counts: Counter[str] = Counter()
    for report in reports:
        counts.update(report.counts)
    a = t.agents.c
    conn.execute(
        update(t.agents)
        .where(a.id == agent_id)
        .values(
            succeeded=a.succeeded + counts["DONE"] + counts["SKIPPED"],
            failed=a.failed + counts["FAILED"] + counts["WAITING"],
            canceled=a.canceled + counts["CANCELED"],
            bytes=a.bytes + sum(r.moved for r in reports),
        )
    )
