"""Counts of what the store holds now, for the monitoring's scrape and the dashboard's
overview."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ferry.domain.states import TaskState, TransferStatus
from ferry.store import tables as t
from ferry.store.abc import LinkActivity, ScheduledRun, StoreGauges
from ferry.store.sql_base import SqlBase
from ferry.store.sql_passive import PASSIVE_AGENT

Link = tuple[str, str]


def _grouped(conn: Connection, statement: Select[Any]) -> dict[Any, int]:
    """``{key: count}`` from rows of (key columns…, count); a single key column is the key."""
    counts = {}
    for *key, count in conn.execute(statement):
        counts[key[0] if len(key) == 1 else tuple(key)] = int(count)
    return counts


class GaugesMixin(SqlBase):
    async def gauges(self) -> StoreGauges:
        return await self._reading(self._gauges)

    @staticmethod
    def _gauges(conn: Connection) -> StoreGauges:
        tasks, transfers, agents = t.tasks.c, t.transfers.c, t.agents.c
        # Each through an index: transfers by (status, …), tasks by the index of one state.
        queued = select(tasks.scope, func.count()).where(t.task_state_is(TaskState.QUEUED.value))
        active = select(tasks.source_site, tasks.destination_site, func.count()).where(
            t.task_state_is(TaskState.ACTIVE.value)
        )
        return StoreGauges(
            transfers=_grouped(
                conn, select(transfers.status, func.count()).group_by(transfers.status)
            ),
            queued=_grouped(conn, queued.group_by(tasks.scope)),
            active=_grouped(conn, active.group_by(tasks.source_site, tasks.destination_site)),
            agents=_grouped(conn, select(agents.state, func.count()).group_by(agents.state)),
        )

    async def link_activity(
        self, since: datetime, scopes: Sequence[str] | None
    ) -> list[LinkActivity]:
        return await self._reading(_link_activity, since, scopes)

    async def next_runs(self, scopes: Sequence[str] | None, limit: int) -> list[ScheduledRun]:
        return await self._reading(_next_runs, scopes, limit)


def _of_scopes(scopes: Sequence[str] | None) -> ColumnElement[bool]:
    return true() if scopes is None else t.tasks.c.scope.in_(list(scopes))


def _link_activity(
    conn: Connection, since: datetime, scopes: Sequence[str] | None
) -> list[LinkActivity]:
    links: dict[Link, LinkActivity] = {}

    def found(key: Link) -> LinkActivity:
        return links.setdefault(key, LinkActivity(*key))

    def counted(state: TaskState) -> dict[Link, int]:
        per_link: dict[Link, int] = {}
        for (_, *key), count in _grouped(conn, count_by_queue(state, scopes)).items():
            per_link[(key[0], key[1])] = per_link.get((key[0], key[1]), 0) + count
        return per_link

    for key, count in counted(TaskState.QUEUED).items():
        links[key] = replace(found(key), queued=count)
    for key, count in counted(TaskState.ACTIVE).items():
        links[key] = replace(found(key), active=count)
    for key, done in _done_since(conn, since, scopes).items():
        links[key] = replace(
            found(key),
            done=done.count,
            bytes=done.bytes,
            first_done_at=done.first,
            per_minute=tuple(sorted(done.per_minute.items())),
        )
    for key, failed, error, count, message in _failed_since(conn, since, scopes):
        links[key] = replace(
            found(key), failed=failed, top_error=f"{error}: {message}", top_error_count=count
        )
    return sorted(links.values(), key=lambda a: (a.source_site, a.destination_site))


def count_by_queue(state: TaskState, scopes: Sequence[str] | None) -> Select[Any]:
    """The tasks in ``state`` counted per queue (scope, source site, destination site), the
    order of the index of QUEUED tasks: grouped as that index reads them, without sorting
    every entry again as grouping by link alone did."""
    tasks = t.tasks.c
    queue = (tasks.scope, tasks.source_site, tasks.destination_site)
    statement = select(*queue, func.count()).where(t.task_state_is(state.value))
    return statement.where(_of_scopes(scopes)).group_by(*queue)


class MinutesSince(FunctionElement[int]):
    """Whole minutes from an instant to a stored time: the minute of the last hour a task
    ended in, for the database to group by (SQLite and PostgreSQL each say it their way).
    SQLite reads its stored text as a Julian day: through seconds since the epoch
    (``strftime('%s')``) the query took markedly longer (bench/findings.md)."""

    type = Integer()
    inherit_cache = True
    name = "minutes_since"


@compiles(MinutesSince, "sqlite")
def _minutes_since_sqlite(element: MinutesSince, compiler: SQLCompiler, **kw: Any) -> str:
    moment, since = (compiler.process(clause, **kw) for clause in element.clauses)
    # whole milliseconds first: a day's fraction, multiplied, falls short of a whole minute
    ms = f"CAST(round((julianday({moment}) - julianday({since})) * 86400000) AS INTEGER)"
    return f"({ms} / 60000)"


@compiles(MinutesSince, "postgresql")
def _minutes_since_postgresql(element: MinutesSince, compiler: SQLCompiler, **kw: Any) -> str:
    moment, since = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(floor(extract(epoch FROM {moment} - {since}) / 60) AS INTEGER)"


@dataclass(slots=True)
class Done:
    """A link's DONE tasks since an instant: how many, their bytes, the first end, and their
    bytes per minute after the instant."""

    count: int = 0
    bytes: int = 0
    first: datetime | None = None
    per_minute: dict[int, int] = field(default_factory=dict)


def _done_since(
    conn: Connection, since: datetime, scopes: Sequence[str] | None
) -> dict[Link, Done]:
    """DONE tasks per link and minute since ``since``, through the index of DONE tasks by
    agent and end: one range of it per agent that ever leased (a handful), the client's
    passive ones too. The minutes cost no more rows: those of the last hour, read once. A
    chunk counts the objects it moved, each."""
    tasks = t.tasks.c
    leasers = [*conn.execute(select(t.agents.c.id)).scalars(), PASSIVE_AGENT]
    minute = MinutesSince(tasks.finished_at, literal(since, t.UtcDateTime())).label("minute")
    statement = (
        select(
            tasks.source_site,
            tasks.destination_site,
            minute,
            func.sum(tasks.objects),  # an ended chunk's: the objects it moved
            func.coalesce(func.sum(tasks.bytes_done), 0),
            func.min(tasks.finished_at),
        )
        .where(
            t.task_state_is(TaskState.DONE.value),
            tasks.lease_agent.in_(leasers),
            tasks.finished_at >= since,
            _of_scopes(scopes),
        )
        .group_by(tasks.source_site, tasks.destination_site, minute.name)  # its parameter once
    )
    links: dict[Link, Done] = {}
    for source, destination, k, count, moved, first in conn.execute(statement):
        done = links.setdefault((source, destination), Done())
        done.count += int(count)
        done.bytes += int(moved)
        done.first = first if done.first is None else min(done.first, first)
        done.per_minute[int(k)] = done.per_minute.get(int(k), 0) + int(moved)
    return links


def _failed_since(
    conn: Connection, since: datetime, scopes: Sequence[str] | None
) -> list[tuple[Link, int, str, int, str]]:
    """FAILED objects per link since ``since``, single tasks and objects of chunks, with their
    commonest error class and one of its messages (through the indexes of FAILED tasks and
    FAILED outcomes by end)."""
    tasks = t.tasks.c
    statement = (
        select(
            tasks.source_site,
            tasks.destination_site,
            func.coalesce(tasks.error_class, "error"),
            func.count(),
            func.min(func.coalesce(tasks.error, "")),
        )
        .where(t.task_state_is(TaskState.FAILED.value), tasks.finished_at >= since)
        .where(_of_scopes(scopes))
        .group_by(tasks.source_site, tasks.destination_site, tasks.error_class)
    )
    counted: dict[tuple[str, str, str], tuple[int, str]] = {}
    for rows in (conn.execute(statement), conn.execute(_failed_outcomes(since, scopes))):
        for source, destination, error, count, message in rows:
            before, first = counted.get((source, destination, error), (0, message))
            counted[(source, destination, error)] = (before + count, min(first, message))
    per_link: dict[Link, tuple[int, str, int, str]] = {}
    for (source, destination, error), (count, message) in counted.items():
        total, top, top_count, top_message = per_link.get((source, destination), (0, "", 0, ""))
        if count > top_count:
            top, top_count, top_message = error, count, message
        per_link[(source, destination)] = (total + count, top, top_count, top_message)
    return [(key, *figures) for key, figures in per_link.items()]


def _failed_outcomes(since: datetime, scopes: Sequence[str] | None) -> Select[Any]:
    """FAILED objects of chunks since ``since`` per link and error class: the outcomes of
    ``ix_outcomes_failed_at``, each with the link of a carrier of its chunk list (every
    carrier of a list has its roots, so its link)."""
    o, tasks, ch = t.outcomes.c, t.tasks.c, t.chunks.c
    of_run = (ch.transfer_id == o.transfer_id) & (ch.run == o.run)
    origin = (
        select(func.max(ch.first))
        .where(of_run, ch.first <= o.object)
        .correlate(t.outcomes)
        .scalar_subquery()
    )
    other = t.tasks.alias("carrier").c
    carrier = (
        select(other.id)
        .where((other.transfer_id == o.transfer_id) & (other.run == o.run))
        .where(other.origin == origin)
        .correlate(t.outcomes)
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            tasks.source_site,
            tasks.destination_site,
            func.coalesce(o.error_class, "error"),
            func.count(),
            func.min(func.coalesce(o.error, "")),
        )
        .select_from(t.outcomes.join(t.tasks, tasks.id == carrier))
        .where(t.outcome_state_is("FAILED"), o.finished_at >= since, _of_scopes(scopes))
        .group_by(tasks.source_site, tasks.destination_site, o.error_class)
    )


def _next_runs(conn: Connection, scopes: Sequence[str] | None, limit: int) -> list[ScheduledRun]:
    """Each status through the index by (status, next_run_at), in order, then merged."""
    c = t.transfers.c
    found: list[ScheduledRun] = []
    for status in (TransferStatus.STANDBY, TransferStatus.ONGOING):
        statement = (
            select(c.id, c.scope, c.schedule_kind, c.status, c.next_run_at.label("due"))
            .where(c.status == status.value, c.next_run_at.is_not(None))
            .order_by(c.next_run_at)
            .limit(limit)
        )
        if scopes is not None:
            statement = statement.where(c.scope.in_(list(scopes)))
        found += [
            ScheduledRun(row.id, row.scope, row.schedule_kind or "direct", row.status, row.due)
            for row in conn.execute(statement)
        ]
    return sorted(found, key=lambda run: run.due_at)[:limit]
