"""Transfers and runs in SQL: submission, due claims, expansion, finishing, cancel, outcomes."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ferry.domain.states import (
    TaskState,
    TransferStatus,
    check_transfer_transition,
)
from ferry.domain.transfers import (
    Run,
    Task,
    Transfer,
)
from ferry.errors import AlreadyFinished, Conflict, InvalidRequest, NotFound, TransferNotFound
from ferry.store import tables as t
from ferry.store.abc import Attempt, CancelOutcome, NewTransfer, TransferFilter, TransferPage
from ferry.store.sql_base import SqlBase, run_from_row, task_from_row, transfer_from_row


def spec_hash(new: NewTransfer) -> str:
    schedule = new.requested_schedule if new.requested_schedule is not None else new.schedule
    body = {"spec": new.spec.to_json(), "schedule": schedule}
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
                # A scope comes into being with its first transfer (weight 1, until set).
                await self._insert_missing(
                    conn, t.scopes, [{"name": new.scope, "weight": 1, "created_at": now}]
                )
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
                        schedule_kind=new.schedule.get("kind", "direct"),
                        created_at=now,
                        updated_at=now,
                    )
                )
                if labels := new.spec.options.labels:
                    await conn.execute(
                        insert(t.transfer_labels),
                        [{"transfer_id": transfer_id, "label": label} for label in labels],
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
        self,
        *,
        status: TransferStatus | None = None,
        kind: str | None = None,
        limit: int,
        cursor: str | None,
        where: TransferFilter | None = None,
    ) -> TransferPage:
        c = t.transfers.c
        where = where or TransferFilter()
        where = replace(where, status=status or where.status, kind=kind or where.kind)
        query = select(t.transfers).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        for column, value in (
            (c.status, where.status.value if where.status else None),
            (c.kind, where.kind),
            (c.submitter, where.submitter),
            (c.scope, where.scope),
            (c.schedule_kind, where.schedule_kind),
        ):
            if value is not None:
                query = query.where(column == value)
        if where.label is not None:
            labeled = select(t.transfer_labels.c.transfer_id).where(
                t.transfer_labels.c.label == where.label
            )
            query = query.where(c.id.in_(labeled))
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

    async def list_runs(self, transfer_id: str, *, after: int, limit: int) -> list[Run]:
        r = t.runs.c
        query = (
            select(t.runs)
            .where((r.transfer_id == transfer_id) & (r.number > after))
            .order_by(r.number)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [run_from_row(row) for row in rows]

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

    # --- cancel and outcomes --------------------------------------------------------------------
    async def cancel_transfer(self, transfer_id: str) -> CancelOutcome:
        now = self.clock()
        c = t.transfers.c
        async with self._tx() as conn:
            row = (await conn.execute(select(t.transfers).where(c.id == transfer_id))).first()
            if row is None:
                raise TransferNotFound(transfer_id)
            current = TransferStatus(row.status)
            if current not in (TransferStatus.STANDBY, TransferStatus.ONGOING):
                raise AlreadyFinished(transfer_id, current.value)
            check_transfer_transition(current, TransferStatus.CANCELED)
            # STANDBY ends at once; ONGOING ends when its active tasks have stopped.
            values: dict[str, Any] = {"next_run_at": None, "error": "canceled", "updated_at": now}
            if current is TransferStatus.STANDBY:
                values["status"] = TransferStatus.CANCELED.value
            else:
                values["cancel_requested"] = True
            moved = await conn.execute(
                update(t.transfers)
                .where((c.id == transfer_id) & (c.status == current.value))
                .values(**values)
            )
            if moved.rowcount != 1:  # another server moved it meanwhile: the caller may retry
                raise Conflict(f"transfer {transfer_id} changed while being canceled: try again")
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
                    a.number,
                    a.agent,
                    a.started_at,
                    a.finished_at,
                    a.bytes,
                    a.error_class,
                    a.error,
                    a.state,
                )
            )
        return [(task_from_row(r), history[r.id]) for r in rows]
