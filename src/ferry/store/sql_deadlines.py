"""Runs ended at their deadline (the transfer's ``deadline`` option): at ``runs.deadline_at``
the objects of an ONGOING run not done yet are CANCELED with the reason "deadline", those
being copied are told to stop (their agents learn it at the next heartbeat, as for a cancel),
and its listing stops. The run then ends CANCELED through the finalize loop, with its error;
the transfer's notification fires as for any run, and a periodic transfer goes on to its next
occurrence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, select, update

from ferry.domain.states import RunStatus, TaskState
from ferry.domain.transfers import Run
from ferry.store import tables as t
from ferry.store.sql_base import SqlBase, first_row
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


def _end_past_deadline(conn: Connection, due: Select[Any], now: datetime) -> list[Run]:
    ended = []
    for row in conn.execute(due).all():
        run = run_from_row(row)
        assert run.deadline_at is not None
        c = t.tasks.c
        of_run = (c.transfer_id == run.transfer_id) & (c.run == run.number)
        waiting = of_run & t.task_state_is(TaskState.QUEUED.value, TaskState.WAITING.value)
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
