"""Pause and resume in SQL: transfers (their objects out of the queue, their occurrences
skipped) and agents (drained).

A paused transfer's QUEUED and WAITING tasks are PAUSED: the lease's queue index holds QUEUED
tasks only, so the lease does no work for them and is not changed at all. A task that comes
back to the queue while its transfer is paused (a copy that was active at the pause and is
given back, retried or lost with its lease, a tree's next page) is PAUSED in the same
transaction (``park_paused``). That transaction reads whether its transfer is paused with a
shared lock of the transfer's row (PostgreSQL): a pause writes that row before it moves the
tasks, so either the pause waits for the transaction and then finds its tasks QUEUED, or the
transaction waits for the pause and finds it paused. (SQLite has one writer at a time.)"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select, update

from ferry.domain.schedules import Schedule, next_occurrence, occurrences_due
from ferry.domain.states import RunStatus, TaskState, TransferStatus, check_transfer_transition
from ferry.domain.transfers import Agent, Run, RunCounts, TransferOptions
from ferry.errors import AlreadyFinished, Conflict, NotFound, TransferNotFound
from ferry.store import tables as t
from ferry.store.abc import PauseOutcome
from ferry.store.sql_rows import agent_from_row
from ferry.store.sql_transfers import TransfersMixin

PAUSE_STOPPED = "stopped while copying: its transfer was paused (it goes on when resumed)"
PASSIVE_STORAGE = "client"  # ``sql_passive.CLIENT_STORAGE``: the client moves those objects


def paused_among(conn: Connection, transfer_ids: Iterable[str]) -> set[str]:
    """Which of ``transfer_ids`` are paused, their rows share-locked (see the module's
    docstring)."""
    ids = list(set(transfer_ids))
    if not ids:
        return set()
    c = t.transfers.c
    query = select(c.id).where(c.id.in_(ids) & c.paused_at.is_not(None))
    return set(conn.execute(query.with_for_update(read=True)).scalars())


def stopped_by_pause(conn: Connection, transfer_ids: Iterable[str]) -> set[str]:
    """Which of ``transfer_ids`` are paused with their active copies stopped."""
    ids = list(set(transfer_ids))
    if not ids:
        return set()
    c = t.transfers.c
    query = select(c.id).where(c.id.in_(ids) & c.pause_stops & c.paused_at.is_not(None))
    return set(conn.execute(query).scalars())


def park_paused(conn: Connection, tasks: Iterable[tuple[str, int]]) -> int:
    """Of ``tasks`` ((transfer id, task id) pairs that may have just become QUEUED), those of
    a paused transfer that are QUEUED become PAUSED. Return how many."""
    by_transfer: dict[str, list[int]] = defaultdict(list)
    for transfer_id, task_id in tasks:
        by_transfer[transfer_id].append(task_id)
    paused = paused_among(conn, by_transfer)
    ids = [task_id for transfer_id in paused for task_id in by_transfer[transfer_id]]
    if not ids:
        return 0
    parked = conn.execute(
        update(t.tasks)
        .where(t.tasks.c.id.in_(ids) & t.task_state_is(TaskState.QUEUED.value))
        .values(state=TaskState.PAUSED.value)
    )
    return int(parked.rowcount)


def queued_or_paused(conn: Connection, transfer_id: str) -> TaskState:
    """The state a task given back to the queue now takes: PAUSED while its transfer is."""
    return TaskState.PAUSED if paused_among(conn, [transfer_id]) else TaskState.QUEUED


def skipped_runs(conn: Connection, rows: list[Any], now: datetime) -> list[Run]:
    """Record the occurrence each paused periodic transfer of ``rows`` (due now; the due
    claim's columns) has come to as a SKIPPED run, and move it on to its next occurrence (none:
    its series ended while it was paused, and it is CANCELED, saying so)."""
    skipped = []
    c = t.transfers.c
    for row in rows:
        schedule = Schedule.from_json(row.schedule)
        options = TransferOptions.from_json(row.spec.get("options", {}))
        stands_for = occurrences_due(schedule, row.next_run_at, now)
        following = next_occurrence(schedule, now)
        values: dict[str, Any] = {
            "runs": c.runs + 1,
            "next_run_at": following,
            "late_at": options.late_at(following),
            "updated_at": now,
        }
        if following is None:
            check_transfer_transition(TransferStatus.STANDBY, TransferStatus.CANCELED)
            values.update(status=TransferStatus.CANCELED.value, error=SERIES_ENDED, paused_at=None)
        moved = conn.execute(
            update(t.transfers)
            .where((c.id == row.id) & (c.status == TransferStatus.STANDBY.value))
            .values(**values)
        )
        if moved.rowcount != 1:
            continue
        run = Run(
            row.id,
            row.runs + 1,
            RunStatus.SKIPPED,
            row.next_run_at,
            None,
            now,
            True,
            RunCounts(),
            SKIPPED_WHILE_PAUSED,
            occurrences=stands_for,
            numbered=True,
        )
        conn.execute(insert(t.runs).values(**_skipped_row(run)))
        skipped.append(run)
    return skipped


SKIPPED_WHILE_PAUSED = "skipped: the transfer was paused"
SERIES_ENDED = "canceled: its series ended while it was paused"


def _skipped_row(run: Run) -> dict[str, Any]:
    return {
        "transfer_id": run.transfer_id,
        "number": run.number,
        "status": run.status.value,
        "due_at": run.due_at,
        "started_at": None,
        "finished_at": run.finished_at,
        "occurrences": run.occurrences,
        "skipped_occurrences": 0,
        "expanded": True,
        "error": run.error,
        "next_object": 1,
    }


class PausesMixin(TransfersMixin):
    async def pause_transfer(self, transfer_id: str, *, stop: bool = False) -> PauseOutcome:
        now = self.clock()
        async with self._tx() as conn:
            row = await conn.run_sync(_transfer_row, transfer_id)
            if row.paused_at is not None and (row.pause_stops or not stop):
                raise Conflict(f"transfer {transfer_id} is paused already")
            c = t.transfers.c
            # The transfer's row first, then its tasks (see the module's docstring).
            await conn.execute(
                update(t.transfers)
                .where(c.id == transfer_id)
                .values(paused_at=row.paused_at or now, pause_stops=stop, updated_at=now)
            )
            paused, stopping = await conn.run_sync(_park_run, row, stop)
        return PauseOutcome(await self.get_transfer(transfer_id), paused, stopping)

    async def resume_transfer(self, transfer_id: str) -> PauseOutcome:
        now = self.clock()
        async with self._tx() as conn:
            row = await conn.run_sync(_transfer_row, transfer_id)
            if row.paused_at is None:
                raise Conflict(f"transfer {transfer_id} is not paused")
            c = t.transfers.c
            values: dict[str, Any] = {"paused_at": None, "pause_stops": False, "updated_at": now}
            if row.status == TransferStatus.STANDBY.value and row.next_run_at is not None:
                options = TransferOptions.from_json(row.spec.get("options", {}))
                late_at = options.late_at(row.next_run_at)
                values["late_at"] = late_at if late_at is not None and late_at > now else None
            await conn.execute(update(t.transfers).where(c.id == transfer_id).values(**values))
            resumed = await conn.run_sync(_unpark_run, row)
        return PauseOutcome(await self.get_transfer(transfer_id), resumed, 0)

    async def pause_agent(self, name: str) -> Agent:
        return await self._set_agent_paused(name, paused=True)

    async def resume_agent(self, name: str) -> Agent:
        return await self._set_agent_paused(name, paused=False)

    async def _set_agent_paused(self, name: str, *, paused: bool) -> Agent:
        a = t.agents.c
        async with self._tx() as conn:
            named = (a.name == name) | (a.id == name)
            row = (await conn.execute(select(a.id, a.paused_at).where(named))).first()
            if row is None:
                raise NotFound(f"agent {name!r} not found")
            if paused == (row.paused_at is not None):
                raise Conflict(f"agent {name!r} is {'paused already' if paused else 'not paused'}")
            changed = await conn.execute(
                update(t.agents)
                .where(a.id == row.id)
                .values(paused_at=self.clock() if paused else None)
                .returning(*t.agents.c)
            )
            return agent_from_row(changed.one())


def _transfer_row(conn: Connection, transfer_id: str) -> Any:
    """The transfer's row, locked, if it may be paused or resumed: not finished, not being
    canceled, not a push or pull."""
    c = t.transfers.c
    row = conn.execute(select(t.transfers).where(c.id == transfer_id).with_for_update()).first()
    if row is None:
        raise TransferNotFound(transfer_id)
    status = TransferStatus(row.status)
    if status not in (TransferStatus.STANDBY, TransferStatus.ONGOING):
        raise AlreadyFinished(transfer_id, status.value)
    if row.cancel_requested:
        raise Conflict(f"transfer {transfer_id} is being canceled")
    if PASSIVE_STORAGE in _storages_of(row.spec):
        raise Conflict(f"transfer {transfer_id} is a push or pull: its client moves its objects")
    return row


def _storages_of(spec: dict[str, Any]) -> set[str]:
    locations = [*spec.get("sources", []), spec.get("destination", "")]
    return {str(location).partition(":")[0] for location in locations}


def _of_latest_run(row: Any) -> Any:
    c = t.tasks.c
    return (c.transfer_id == row.id) & (c.run == row.runs)


def _park_run(conn: Connection, row: Any, stop: bool) -> tuple[int, int]:
    """The latest run's QUEUED and WAITING tasks become PAUSED: how many objects they carry,
    and how many active tasks are to stop (``stop``) or finish."""
    c = t.tasks.c
    if row.runs == 0:
        return 0, 0
    waiting = t.task_state_is(TaskState.QUEUED.value, TaskState.WAITING.value)
    objects = conn.execute(
        update(t.tasks)
        .where(_of_latest_run(row) & waiting)
        .values(state=TaskState.PAUSED.value)
        .returning(c.objects)
    )
    paused = sum(objects.scalars())
    active = select(func.count()).where(
        _of_latest_run(row) & t.task_state_is(TaskState.ACTIVE.value)
    )
    stopping = conn.execute(active).scalar() if stop else 0
    return int(paused), int(stopping or 0)


def _unpark_run(conn: Connection, row: Any) -> int:
    """The latest run's PAUSED tasks go back: QUEUED, or WAITING for the retry they were
    waiting for (the retry loop requeues it once due). How many objects they carry."""
    c = t.tasks.c
    if row.runs == 0:
        return 0
    back = case((c.not_before.is_(None), TaskState.QUEUED.value), else_=TaskState.WAITING.value)
    objects = conn.execute(
        update(t.tasks)
        .where(_of_latest_run(row) & t.task_state_is(TaskState.PAUSED.value))
        .values(state=back)
        .returning(c.objects)
    )
    return int(sum(objects.scalars()))
