"""Runs ended at their deadline (the transfer's ``deadline`` option): at ``runs.deadline_at``
the objects of an ONGOING run not done yet are CANCELED with the reason "deadline", those
being copied are told to stop (their agents learn it at the next heartbeat, as for a cancel),
and its listing stops. The run then ends CANCELED through the finalize loop, with its error;
the transfer's notification fires as for any run, and a periodic transfer goes on to its next
occurrence.

A run is late when it has not started ``late_after`` after it was due (the server was away,
or the transfer's previous run still goes on): ``transfers.late_at`` says when, kept as the
transfer is submitted, claimed and rescheduled; once told (a "run.late" event, and the
transfer's notification), it is cleared until the next occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select, update

from ferry.domain.events import RunLate
from ferry.domain.schedules import Schedule, next_occurrence
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import Run, TransferOptions
from ferry.store import tables as t
from ferry.store.sql_base import SqlBase, first_row
from ferry.store.sql_hooks import enqueue_notification
from ferry.store.sql_rows import run_from_row

DEADLINE = "deadline"  # the error of each object canceled at its run's deadline


class DeadlinesMixin(SqlBase):
    async def end_runs_past_deadline(self, now: datetime) -> list[Run]:
        r = t.runs.c
        due = (r.status == RunStatus.ONGOING.value) & (r.deadline_at <= now) & ~r.past_deadline
        # Looked for first without the writer's lock: the loop asks every second, and most
        # times no run is at its deadline.
        if await self._reading(first_row, select(r.transfer_id).where(due).limit(1)) is None:
            return []
        return await self._write(_end_past_deadline, select(t.runs).where(due), now)

    async def note_late_runs(self, now: datetime) -> list[RunLate]:
        c = t.transfers.c
        waiting = (TransferStatus.STANDBY.value, TransferStatus.ONGOING.value)
        # Not while paused: its occurrences are skipped on purpose, each as a SKIPPED run.
        late = (c.late_at <= now) & c.status.in_(waiting) & c.paused_at.is_(None)
        if await self._reading(first_row, select(c.id).where(late).limit(1)) is None:
            return []
        return await self._write(self._note_late, late, now)

    def _note_late(
        self, conn: Connection, late: ColumnElement[bool], now: datetime
    ) -> list[RunLate]:
        c = t.transfers.c
        told = []
        columns = (c.id, c.scope, c.runs, c.status, c.late_at, c.next_run_at, c.spec, c.schedule)
        for row in conn.execute(select(*columns).where(late)).all():
            options = TransferOptions.from_json(row.spec.get("options", {}))
            after = timedelta(seconds=options.late_after_s or 0)
            due = row.late_at - after
            # Opened since, late (no server ran meanwhile): that run; then the next one's time.
            started = _latest_due(conn, row) == due
            following = None
            if row.status == TransferStatus.STANDBY.value:
                following = options.late_at(row.next_run_at) if started else None
            elif started:
                following = options.late_at(next_occurrence(Schedule.from_json(row.schedule), due))
            if following is not None and following <= now:
                following = None  # late already: told once, at its claim or this loop's pass
            cleared = conn.execute(
                update(t.transfers)
                .where((c.id == row.id) & (c.late_at == row.late_at))
                .values(late_at=following)
            )
            if cleared.rowcount != 1:  # another server told it meanwhile
                continue
            event = RunLate(
                transfer=row.id,
                run=row.runs if started else row.runs + 1,
                due_at=due.astimezone(UTC).isoformat(),
                late_after_s=int(after.total_seconds()),
                started=started,
            )
            if options.notify:
                payload = {**event.to_json(), "scope": row.scope}
                enqueue_notification(conn, options.notify, row.id, event.run, payload, now)
            told.append(event)
        return told


def _latest_due(conn: Connection, transfer: Any) -> datetime | None:
    """When the transfer's latest run was due; None before its first."""
    r = t.runs.c
    latest = select(r.due_at).where((r.transfer_id == transfer.id) & (r.number == transfer.runs))
    return conn.execute(latest).scalar()


def _end_past_deadline(conn: Connection, due: Select[Any], now: datetime) -> list[Run]:
    ended = []
    for row in conn.execute(due).all():
        run = run_from_row(row)
        assert run.deadline_at is not None
        c = t.tasks.c
        of_run = (c.transfer_id == run.transfer_id) & (c.run == run.number)
        # A paused run's objects too: a deadline holds while its transfer is paused.
        waiting = of_run & t.task_state_is(
            TaskState.QUEUED.value, TaskState.WAITING.value, TaskState.PAUSED.value
        )
        # A carrier's objects are canceled with it, each counted, as a cancel counts them.
        canceled = sum(
            conn.execute(
                update(t.tasks)
                .where(waiting)
                .values(state=TaskState.CANCELED.value, finished_at=now, error=DEADLINE)
                .returning(c.objects)
            ).scalars()
        )
        conn.execute(
            update(t.tasks)
            .where(of_run & t.task_state_is(TaskState.ACTIVE.value))
            .values(cancel_requested=True)
        )
        at = run.deadline_at.astimezone(UTC).isoformat(timespec="seconds")
        error = run.error or f"{DEADLINE}: not done by {at}"
        conn.execute(
            update(t.runs)
            .where((t.runs.c.transfer_id == run.transfer_id) & (t.runs.c.number == run.number))
            .values(
                past_deadline=True,
                expanded=True,
                error=error,
                canceled=t.runs.c.canceled + canceled,
            )
        )
        ended.append(run)
    return ended
