"""Transfers and runs in SQL: submission, due claims, expansion, finishing, cancel, outcomes."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ferry.domain.states import (
    RUN_END_STATUSES,
    RunStatus,
    TaskState,
    TransferStatus,
    check_run_transition,
    check_transfer_transition,
)
from ferry.domain.transfers import (
    PlannedTask,
    Run,
    RunCounts,
    Task,
    Transfer,
    run_outcome,
    transfer_status_after,
)
from ferry.errors import AlreadyFinished, Conflict, InvalidRequest, NotFound, TransferNotFound
from ferry.store import tables as t
from ferry.store.abc import Attempt, CancelOutcome, NewTransfer, TransferPage
from ferry.store.sql_base import SqlBase, run_from_row, task_from_row, transfer_from_row
from ferry.store.sql_tasks import RunCounter


def spec_hash(new: NewTransfer) -> str:
    body = {"spec": new.spec.to_json(), "schedule": new.schedule}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _encode_cursor(created_at: datetime, transfer_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{transfer_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, _, transfer_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(created), transfer_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"invalid cursor {cursor!r}") from exc


class TransfersMixin(SqlBase):
    async def create_transfer(self, new: NewTransfer) -> tuple[Transfer, bool]:
        now = self.clock()
        digest = spec_hash(new)
        transfer_id = str(uuid.uuid4())
        try:
            async with self._tx() as conn:
                await conn.execute(
                    insert(t.transfers).values(
                        id=transfer_id,
                        scope=new.scope,
                        submitter=new.submitter,
                        kind=new.spec.kind.value,
                        spec=new.spec.to_json(),
                        schedule=new.schedule,
                        status=TransferStatus.STANDBY.value,
                        next_run_at=new.next_run_at,
                        runs=0,
                        submission_id=new.submission_id,
                        spec_hash=digest,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            if new.submission_id is None:
                raise
            return await self._existing_submission(new, digest), False
        return await self.get_transfer(transfer_id), True

    async def _existing_submission(self, new: NewTransfer, digest: str) -> Transfer:
        c = t.transfers.c
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(t.transfers).where(
                        (c.scope == new.scope)
                        & (c.submitter == new.submitter)
                        & (c.submission_id == new.submission_id)
                    )
                )
            ).first()
        if row is None:  # the insert failed for another reason (e.g. an unknown scope)
            raise InvalidRequest(f"transfer refused: scope {new.scope!r} does not exist")
        if row.spec_hash != digest:
            raise Conflict(
                f"submission id {new.submission_id!r} was used for another transfer ({row.id})"
            )
        return transfer_from_row(row)

    async def get_transfer(self, transfer_id: str) -> Transfer:
        async with self._read() as conn:
            row = (
                await conn.execute(select(t.transfers).where(t.transfers.c.id == transfer_id))
            ).first()
        if row is None:
            raise TransferNotFound(transfer_id)
        return transfer_from_row(row)

    async def list_transfers(
        self, *, status: TransferStatus | None, kind: str | None, limit: int, cursor: str | None
    ) -> TransferPage:
        c = t.transfers.c
        query = select(t.transfers).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        if status is not None:
            query = query.where(c.status == status.value)
        if kind is not None:
            query = query.where(c.kind == kind)
        if cursor:
            created, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(c.created_at < created, and_(c.created_at == created, c.id < last_id))
            )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        items = [transfer_from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return TransferPage(
            items, _encode_cursor(items[-1].created_at, items[-1].id) if more else None
        )

    async def latest_runs(self, transfers: Sequence[Transfer]) -> dict[str, Run]:
        """The latest run of each transfer that has one, in one query."""
        keys = [(tr.id, tr.runs) for tr in transfers if tr.runs > 0]
        if not keys:
            return {}
        query = select(t.runs).where(tuple_(t.runs.c.transfer_id, t.runs.c.number).in_(keys))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {row.transfer_id: run_from_row(row) for row in rows}

    async def get_run(self, transfer_id: str, number: int) -> Run:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(t.runs).where(
                        (t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == number)
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"transfer {transfer_id} has no run {number}")
        return run_from_row(row)

    # --- the due and expand loops ---------------------------------------------------------------
    async def next_due_at(self) -> datetime | None:
        c = t.transfers.c
        async with self._read() as conn:
            value = (
                await conn.execute(
                    select(func.min(c.next_run_at)).where(c.status == TransferStatus.STANDBY.value)
                )
            ).scalar()
        return value if isinstance(value, datetime) else None

    async def claim_due_transfers(self, now: datetime, limit: int) -> list[Run]:
        c = t.transfers.c
        check_transfer_transition(TransferStatus.STANDBY, TransferStatus.ONGOING)
        due = (
            select(t.transfers)
            .where((c.status == TransferStatus.STANDBY.value) & (c.next_run_at <= now))
            .order_by(c.next_run_at)
            .limit(limit)
        )
        claimed: list[Run] = []
        async with self._tx() as conn:
            for row in (await conn.execute(due)).all():
                moved = await conn.execute(
                    update(t.transfers)
                    .where((c.id == row.id) & (c.status == TransferStatus.STANDBY.value))
                    .values(
                        status=TransferStatus.ONGOING.value,
                        runs=c.runs + 1,
                        next_run_at=None,
                        updated_at=now,
                    )
                )
                if moved.rowcount != 1:
                    continue
                run = Run(
                    row.id,
                    row.runs + 1,
                    RunStatus.ONGOING,
                    row.next_run_at,
                    now,
                    None,
                    False,
                    RunCounts(),
                    None,
                )
                await conn.execute(
                    insert(t.runs).values(
                        transfer_id=run.transfer_id,
                        number=run.number,
                        status=run.status.value,
                        due_at=run.due_at,
                        started_at=now,
                        occurrences=1,
                        expanded=False,
                        total=0,
                        done=0,
                        failed=0,
                        skipped=0,
                        canceled=0,
                        bytes=0,
                    )
                )
                claimed.append(run)
        return claimed

    async def runs_to_expand(self, limit: int) -> list[tuple[Transfer, Run]]:
        r = t.runs.c
        pending = (
            select(t.runs).where((r.status == RunStatus.ONGOING.value) & ~r.expanded).limit(limit)
        )
        async with self._read() as conn:
            runs = [run_from_row(row) for row in (await conn.execute(pending)).all()]
            ids = {run.transfer_id for run in runs}
            rows = (
                (await conn.execute(select(t.transfers).where(t.transfers.c.id.in_(ids)))).all()
                if ids
                else []
            )
        transfers = {row.id: transfer_from_row(row) for row in rows}
        return [(transfers[run.transfer_id], run) for run in runs]

    async def add_tasks(self, transfer: Transfer, run: int, planned: Sequence[PlannedTask]) -> None:
        if not planned:
            return
        options = transfer.spec.options
        rows = [
            {
                "transfer_id": transfer.id,
                "run": run,
                "scope": transfer.scope,
                "priority": options.priority,
                "state": p.state.value,
                "source": str(p.source),
                "destination": str(p.destination),
                "size": p.size,
                "attempts": 0,
                "max_attempts": options.retries + 1,
                "cancel_requested": False,
                "bytes_done": 0,
                "error_class": p.error_class,
                "error": p.error,
            }
            for p in planned
        ]
        async with self._tx() as conn:
            status = (
                await conn.execute(
                    select(t.transfers.c.status).where(t.transfers.c.id == transfer.id)
                )
            ).scalar_one()
            if status == TransferStatus.CANCELED.value:
                return  # canceled while it was being listed: nothing more to queue
            await conn.execute(insert(t.tasks), rows)
            counter = RunCounter()
            for p in planned:
                counter.add(transfer.id, run, p.state)
            await counter.apply(conn)
            await conn.execute(
                update(t.runs)
                .where((t.runs.c.transfer_id == transfer.id) & (t.runs.c.number == run))
                .values(total=t.runs.c.total + len(rows))
            )

    async def mark_expanded(self, transfer_id: str, run: int, error: str | None = None) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(t.runs)
                .where((t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run))
                .values(expanded=True, error=error)
            )

    # --- the finalize loop ----------------------------------------------------------------------
    async def finish_runs(self, now: datetime) -> list[Run]:
        r = t.runs.c
        finished_rows = (
            select(t.runs, t.transfers.c.status.label("transfer_status"))
            .join(t.transfers, t.transfers.c.id == r.transfer_id)
            .where(
                (r.status == RunStatus.ONGOING.value)
                & r.expanded
                & (r.total == r.done + r.failed + r.skipped + r.canceled)
            )
        )
        finished: list[Run] = []
        async with self._tx() as conn:
            for row in (await conn.execute(finished_rows)).all():
                run = run_from_row(row)
                finished.append(
                    await self._finish_run(conn, run, TransferStatus(row.transfer_status), now)
                )
        return finished

    async def _finish_run(
        self, conn: AsyncConnection, run: Run, transfer_status: TransferStatus, now: datetime
    ) -> Run:
        if transfer_status is TransferStatus.CANCELED:
            outcome = RunStatus.CANCELED
        elif run.error and run.counts.total == 0:
            outcome = RunStatus.FAILED
        else:
            outcome = run_outcome(run.counts)
        check_run_transition(run.status, outcome)
        error = run.error or await self._first_error(conn, run, outcome)
        await conn.execute(
            update(t.runs)
            .where((t.runs.c.transfer_id == run.transfer_id) & (t.runs.c.number == run.number))
            .values(status=outcome.value, finished_at=now, error=error)
        )
        if outcome in {RunStatus(s.value) for s in RUN_END_STATUSES}:
            status = transfer_status_after(outcome)
            check_transfer_transition(transfer_status, status)
            await conn.execute(
                update(t.transfers)
                .where(
                    (t.transfers.c.id == run.transfer_id)
                    & (t.transfers.c.status == TransferStatus.ONGOING.value)
                )
                .values(status=status.value, error=error, updated_at=now)
            )
        return Run(
            run.transfer_id,
            run.number,
            outcome,
            run.due_at,
            run.started_at,
            now,
            True,
            run.counts,
            error,
        )

    async def _first_error(self, conn: AsyncConnection, run: Run, outcome: RunStatus) -> str | None:
        if run.counts.failed == 0:
            return None
        c = t.tasks.c
        first = (
            await conn.execute(
                select(c.source, c.error)
                .where(
                    (c.transfer_id == run.transfer_id)
                    & (c.run == run.number)
                    & (c.state == TaskState.FAILED.value)
                )
                .order_by(c.id)
                .limit(1)
            )
        ).first()
        summary = f"{run.counts.failed} of {run.counts.total} objects failed"
        if first is None:
            return summary
        error = (first.error or "no error recorded").strip().splitlines()[0]
        return f"{summary}: {error if first.source in error else f'{first.source}: {error}'}"

    # --- cancel and outcomes --------------------------------------------------------------------
    async def cancel_transfer(self, transfer_id: str) -> CancelOutcome:
        now = self.clock()
        async with self._tx() as conn:
            row = (
                await conn.execute(select(t.transfers).where(t.transfers.c.id == transfer_id))
            ).first()
            if row is None:
                raise TransferNotFound(transfer_id)
            current = TransferStatus(row.status)
            if current not in (TransferStatus.STANDBY, TransferStatus.ONGOING):
                raise AlreadyFinished(transfer_id, current.value)
            check_transfer_transition(current, TransferStatus.CANCELED)
            await conn.execute(
                update(t.transfers)
                .where((t.transfers.c.id == transfer_id) & (t.transfers.c.status == current.value))
                .values(
                    status=TransferStatus.CANCELED.value,
                    next_run_at=None,
                    error="canceled",
                    updated_at=now,
                )
            )
            canceled, stopping = await self._cancel_tasks(conn, transfer_id, row.runs, now)
        return CancelOutcome(await self.get_transfer(transfer_id), canceled, stopping)

    async def _cancel_tasks(
        self, conn: AsyncConnection, transfer_id: str, run: int, now: datetime
    ) -> tuple[int, int]:
        c = t.tasks.c
        of_run = (c.transfer_id == transfer_id) & (c.run == run)
        waiting = of_run & c.state.in_([TaskState.QUEUED.value, TaskState.WAITING.value])
        canceled = (
            await conn.execute(
                update(t.tasks)
                .where(waiting)
                .values(state=TaskState.CANCELED.value, finished_at=now, error="canceled")
            )
        ).rowcount
        stopping = (
            await conn.execute(
                update(t.tasks)
                .where(of_run & (c.state == TaskState.ACTIVE.value))
                .values(cancel_requested=True)
            )
        ).rowcount
        if canceled:
            await conn.execute(
                update(t.runs)
                .where((t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run))
                .values(canceled=t.runs.c.canceled + canceled)
            )
        return int(canceled), int(stopping)

    async def outcomes(
        self, transfer_id: str, run: int, *, after: int, limit: int
    ) -> list[tuple[Task, list[Attempt]]]:
        c = t.tasks.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(t.tasks)
                    .where((c.transfer_id == transfer_id) & (c.run == run) & (c.id > after))
                    .order_by(c.id)
                    .limit(limit)
                )
            ).all()
            ids = [r.id for r in rows]
            attempt_rows = (
                (
                    await conn.execute(
                        select(t.attempts)
                        .where(t.attempts.c.task_id.in_(ids))
                        .order_by(t.attempts.c.id)
                    )
                ).all()
                if ids
                else []
            )
        history: dict[int, list[Attempt]] = {i: [] for i in ids}
        for a in attempt_rows:
            history[a.task_id].append(
                Attempt(
                    a.number, a.agent, a.started_at, a.finished_at, a.bytes, a.error_class, a.error
                )
            )
        return [(task_from_row(r), history[r.id]) for r in rows]
