"""Runs in SQL: due claims, expansion into tasks, closing finished runs (the loops' side)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, func, insert, select, update

from ferry.domain.schedules import Schedule, after_run, next_occurrence, occurrences_due
from ferry.domain.states import (
    RunStatus,
    TaskState,
    TransferStatus,
    check_run_transition,
    check_transfer_transition,
)
from ferry.domain.sync import DeletionState
from ferry.domain.transfers import (
    Run,
    RunCounts,
    Transfer,
    TransferOptions,
    run_outcome,
    transfer_status_after,
)
from ferry.store import tables as t
from ferry.store.abc import LostAttempt
from ferry.store.sql_base import all_rows, first_row, scalar_of
from ferry.store.sql_expiry import lost_objects
from ferry.store.sql_hooks import HooksMixin
from ferry.store.sql_insert import InsertMixin, expanded_run
from ferry.store.sql_outcomes import Failure, first_failed_outcome
from ferry.store.sql_pauses import skipped_runs
from ferry.store.sql_rows import run_from_row, transfer_from_row


def _opened_run(row: Any, now: datetime) -> Run:
    stands_for = occurrences_due(Schedule.from_json(row.schedule), row.next_run_at, now)
    options = TransferOptions.from_json(row.spec.get("options", {}))
    return Run(
        row.id,
        row.runs + 1,
        RunStatus.ONGOING,
        row.next_run_at,
        now,
        None,
        False,
        RunCounts(),
        None,
        occurrences=stands_for,
        numbered=True,
        deadline_at=options.run_deadline(row.next_run_at),
        deletion=DeletionState.PENDING if options.delete_extra else None,
    )


def _next_late_at(conn: Connection, rows: dict[str, Any], opened: list[Run]) -> None:
    """For each transfer of ``opened`` with a late_after option: when its next occurrence,
    after this run's, is late if this run still goes on."""
    late = []
    for run in opened:
        row = rows[run.transfer_id]
        options = TransferOptions.from_json(row.spec.get("options", {}))
        if row.late_at is not None and row.late_at <= run.started_at:
            continue  # opened late, not told yet: the deadline loop tells it, then goes on
        if options.late_after_s is not None:
            after = next_occurrence(Schedule.from_json(row.schedule), run.due_at)
            late.append({"transfer": run.transfer_id, "late": options.late_at(after)})
    if late:
        c = t.transfers.c
        conn.execute(
            update(t.transfers)
            .where(c.id == bindparam("transfer"))
            .values(late_at=bindparam("late")),
            late,
        )


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "transfer_id": run.transfer_id,
        "number": run.number,
        "status": run.status.value,
        "due_at": run.due_at,
        "started_at": run.started_at,
        "occurrences": run.occurrences,
        "skipped_occurrences": 0,
        "expanded": False,
        "total": 0,
        "done": 0,
        "failed": 0,
        "skipped": 0,
        "canceled": 0,
        "bytes": 0,
        "size_total": 0,
        "filtered": 0,
        "deleted": 0,
        "deleted_bytes": 0,
        "deletion": run.deletion.value if run.deletion else None,
        "deletion_note": None,
        "last_result_at": None,
        "next_object": 1,  # a run made now numbers its objects
        "deadline_at": run.deadline_at,
        "past_deadline": False,
    }


# A STANDBY transfer the due loop takes: one not paused, or a periodic one (whose occurrences
# due while it is paused are skipped). A one-shot transfer due while paused waits.
_CLAIMABLE = t.transfers.c.paused_at.is_(None) | t.transfers.c.schedule_kind.in_(["every", "cron"])


@dataclass(frozen=True, slots=True)
class _TransferState:
    status: TransferStatus
    canceled: bool
    schedule: Schedule
    options: TransferOptions
    late_at: datetime | None  # not None and past: a late run not told yet


class RunsMixin(HooksMixin, InsertMixin):
    # --- the due and expand loops ---------------------------------------------------------------
    async def next_due_at(self) -> datetime | None:
        c = t.transfers.c
        value = await self._reading(
            scalar_of,
            select(func.min(c.next_run_at)).where(
                (c.status == TransferStatus.STANDBY.value) & _CLAIMABLE
            ),
        )
        return value if isinstance(value, datetime) else None

    async def claim_due_transfers(self, now: datetime, limit: int) -> list[Run]:
        """Three statements per batch, whatever its size: find the due rows (index on status,
        next_run_at), move them to ONGOING in one compare-and-set, open their runs in one insert.
        A paused periodic transfer's occurrence is a SKIPPED run instead (``skipped_runs``)."""
        c = t.transfers.c
        check_transfer_transition(TransferStatus.STANDBY, TransferStatus.ONGOING)
        due = (
            select(c.id, c.runs, c.next_run_at, c.schedule, c.spec, c.late_at, c.paused_at)
            .where((c.status == TransferStatus.STANDBY.value) & (c.next_run_at <= now) & _CLAIMABLE)
            .order_by(c.next_run_at)
            .limit(limit)
        )

        def claim(conn: Connection) -> list[Run]:
            rows = {row.id: row for row in conn.execute(due).all()}
            paused = [row for row in rows.values() if row.paused_at is not None]
            skipped = skipped_runs(conn, paused, now)
            rows = {key: row for key, row in rows.items() if row.paused_at is None}
            if not rows:
                return skipped
            moved = conn.execute(
                update(t.transfers)
                .where(c.id.in_(rows) & (c.status == TransferStatus.STANDBY.value))
                .values(
                    status=TransferStatus.ONGOING.value,
                    runs=c.runs + 1,
                    next_run_at=None,
                    updated_at=now,
                )
                .returning(c.id)
            )
            claimed = [_opened_run(rows[r.id], now) for r in moved.all()]
            conn.execute(insert(t.runs), [_run_row(run) for run in claimed])
            _next_late_at(conn, rows, claimed)
            return claimed + skipped

        return sorted(await self._write(claim), key=lambda run: run.due_at)

    async def runs_to_expand(self, limit: int) -> list[tuple[Transfer, Run]]:
        r = t.runs.c
        pending = (
            select(t.runs).where((r.status == RunStatus.ONGOING.value) & ~r.expanded).limit(limit)
        )

        def read(conn: Connection) -> tuple[list[Run], list[Row[Any]]]:
            runs = [run_from_row(row) for row in all_rows(conn, pending)]
            ids = {run.transfer_id for run in runs}
            of_runs = select(t.transfers).where(t.transfers.c.id.in_(ids))
            return runs, all_rows(conn, of_runs) if ids else []

        runs, rows = await self._reading(read)
        transfers = {row.id: transfer_from_row(row, self._specs) for row in rows}
        return [(transfers[run.transfer_id], run) for run in runs]

    async def active_bytes(self, transfer_id: str, run: int) -> int:
        """Bytes the run's active objects have moved so far, as their agents last reported."""
        c = t.tasks.c
        query = select(func.coalesce(func.sum(c.bytes_done), 0)).where(
            (c.transfer_id == transfer_id)
            & (c.run == run)
            & t.task_state_is(TaskState.ACTIVE.value)
        )
        return int(await self._reading(scalar_of, query))

    async def mark_expanded(self, transfer_id: str, run: int, error: str | None = None) -> None:
        await self._write(Connection.execute, expanded_run(transfer_id, run, error))

    # --- the finalize loop ----------------------------------------------------------------------
    async def lost_attempts(self, transfer_id: str, run: int) -> list[LostAttempt]:
        a, c = t.attempts.c, t.tasks.c
        # A failed attempt may have kept its .part for the next (a resumable copy).
        rows = await self._reading(
            all_rows,
            select(c.id, c.destination, a.number)
            .select_from(t.attempts.join(t.tasks, a.task_id == c.id))
            .where(
                (c.transfer_id == transfer_id) & (c.run == run) & a.state.in_(("LOST", "FAILED"))
            ),
        )
        chunked = await self._reading(lost_objects, transfer_id, run)
        return [LostAttempt(row.id, row.destination, row.number) for row in rows] + chunked

    async def finish_runs(self, now: datetime) -> list[Run]:
        r = t.runs.c
        ended = (
            (r.status == RunStatus.ONGOING.value)
            & r.expanded
            & (r.total == r.done + r.failed + r.skipped + r.canceled)
            # A --delete-extra run's deletion step comes first (``runs_to_prune``).
            & (r.deletion.is_(None) | (r.deletion != DeletionState.PENDING.value))
        )
        # Looked for first without the writer's lock: the loop runs after every report, and
        # most times no run has ended.
        if await self._reading(first_row, select(r.transfer_id).where(ended).limit(1)) is None:
            return []
        finished_rows = (
            select(
                t.runs,
                t.transfers.c.status.label("transfer_status"),
                t.transfers.c.cancel_requested.label("transfer_canceled"),
                t.transfers.c.schedule.label("transfer_schedule"),
                t.transfers.c.spec.label("transfer_spec"),
                t.transfers.c.late_at.label("transfer_late_at"),
                t.transfers.c.scope.label("transfer_scope"),
            )
            .join(t.transfers, t.transfers.c.id == r.transfer_id)
            .where(ended)
        )
        return await self._write(self._finish_ended, finished_rows, now)

    def _finish_ended(
        self, conn: Connection, finished_rows: Select[Any], now: datetime
    ) -> list[Run]:
        finished: list[Run] = []
        for row in conn.execute(finished_rows).all():
            run = run_from_row(row)
            transfer = _TransferState(
                TransferStatus(row.transfer_status),
                bool(row.transfer_canceled),
                Schedule.from_json(row.transfer_schedule),
                TransferOptions.from_json(row.transfer_spec.get("options", {})),
                row.transfer_late_at,
            )
            closed = self._finish_run(conn, run, transfer, now)
            if url := row.transfer_spec.get("options", {}).get("notify"):
                self._enqueue_notification(conn, url, closed, row.transfer_scope, now)
            finished.append(closed)
        return finished

    def _finish_run(
        self, conn: Connection, run: Run, transfer: _TransferState, now: datetime
    ) -> Run:
        if transfer.canceled or transfer.status is TransferStatus.CANCELED or run.past_deadline:
            outcome = RunStatus.CANCELED
        elif run.error and run.counts.total == 0:
            outcome = RunStatus.FAILED
        else:
            outcome = run_outcome(run.counts)
        error = run.error or self._first_error(conn, run, outcome)
        if run.deletion is DeletionState.FAILED and outcome is RunStatus.COMPLETED:
            # Its copies went well, its deletions not at all: the run says why, as an error.
            outcome, error = RunStatus.COMPLETED_WITH_ERRORS, error or run.deletion_note
        check_run_transition(run.status, outcome)
        skipped, next_run_at = 0, None
        # A run ended at its deadline is CANCELED, and its series goes on.
        goes_on = outcome is not RunStatus.CANCELED or run.past_deadline
        if goes_on and run.started_at is not None:
            # From when its last object ended, not from this loop's wake-up a moment later: an
            # occurrence due in between is the next run, not a skipped one.
            ended = run.last_result_at or now
            skipped, next_run_at = after_run(transfer.schedule, run.started_at, ended)
        conn.execute(
            update(t.runs)
            .where((t.runs.c.transfer_id == run.transfer_id) & (t.runs.c.number == run.number))
            .values(status=outcome.value, finished_at=now, error=error, skipped_occurrences=skipped)
        )
        if transfer.status is TransferStatus.ONGOING:
            # The next run is late from then, unless it is late already (and was told so); a
            # late run not told yet is told by the deadline loop, which then goes on.
            late_at = transfer.options.late_at(next_run_at)
            late_at = late_at if late_at is not None and late_at > now else None
            if transfer.late_at is not None and transfer.late_at <= now:
                late_at = transfer.late_at
            self._after_run(conn, run, outcome, error, (next_run_at, late_at), now)
        return replace(
            run,
            status=outcome,
            finished_at=now,
            expanded=True,
            error=error,
            skipped_occurrences=skipped,
        )

    def _after_run(
        self,
        conn: Connection,
        run: Run,
        outcome: RunStatus,
        error: str | None,
        next_run: tuple[datetime | None, datetime | None],
        now: datetime,
    ) -> None:
        """The transfer takes the run's outcome; a periodic one whose series goes on returns to
        STANDBY, due at its next occurrence (``next_run``: when, and when it is late)."""
        next_run_at, late_at = next_run
        status = transfer_status_after(outcome)
        # Ended: it is no longer paused (a periodic one going on stays paused).
        paused = {} if next_run_at is not None else {"paused_at": None, "pause_stops": False}
        if run.past_deadline and next_run_at is not None:
            # Its run was ended at its deadline, the transfer not canceled: the series goes on.
            status = TransferStatus.COMPLETED_WITH_ERRORS
        check_transfer_transition(TransferStatus.ONGOING, status)
        if next_run_at is not None:
            check_transfer_transition(status, TransferStatus.STANDBY)
            status = TransferStatus.STANDBY
        conn.execute(
            update(t.transfers)
            .where(
                (t.transfers.c.id == run.transfer_id)
                & (t.transfers.c.status == TransferStatus.ONGOING.value)
            )
            .values(
                status=status.value,
                error=error,
                next_run_at=next_run_at,
                late_at=late_at,
                cancel_requested=False,
                updated_at=now,
                **paused,
            )
        )

    def _first_error(self, conn: Connection, run: Run, outcome: RunStatus) -> str | None:
        """The run's error: how many objects failed, and the lowest-numbered one's error (of
        the first FAILED single task and the first FAILED object of a chunk)."""
        if run.counts.failed == 0:
            return None
        c = t.tasks.c
        task = conn.execute(
            select(c.object, c.id, c.source, c.error)
            .where(
                (c.transfer_id == run.transfer_id)
                & (c.run == run.number)
                & t.task_state_is(TaskState.FAILED.value)
            )
            .order_by(c.id)
            .limit(1)
        ).first()
        # A run's single tasks are inserted in their objects' order: the first by id is the
        # lowest-numbered (in a run made before numbering, the only kind there is).
        found = [] if task is None else [Failure(task.object or task.id, task.source, task.error)]
        if (chunked := first_failed_outcome(conn, run.transfer_id, run.number)) is not None:
            found.append(chunked)
        summary = f"{run.counts.failed} of {run.counts.total} objects failed"
        if not found:
            return summary
        first = min(found, key=lambda failure: failure.number)
        error = (first.error or "no error recorded").strip().splitlines()[0]
        return f"{summary}: {error if first.source in error else f'{first.source}: {error}'}"
