"""Transfers and runs in SQL: submission, due claims, expansion, finishing, cancel."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ferry.domain.states import (
    TaskState,
    TransferStatus,
    check_transfer_transition,
)
from ferry.domain.transfers import (
    Run,
    Transfer,
    TransferOptions,
)
from ferry.errors import AlreadyFinished, Conflict, InvalidRequest, NotFound, TransferNotFound
from ferry.store import tables as t
from ferry.store.abc import (
    CancelOutcome,
    NewTransfer,
    TransferFilter,
    TransferPage,
    TransferWithRun,
)
from ferry.store.sql_base import SqlBase, all_rows, first_row
from ferry.store.sql_rows import run_from_mapping, run_from_row, transfer_from_row
from ferry.store.sql_transfer_filter import conditions

# A transfer with its latest run's columns after its own (NULL before its first run), and
# the bytes that run's ACTIVE tasks have moved (through the index of a run's ACTIVE tasks).
_RUN_COLUMNS = slice(len(t.transfers.c), len(t.transfers.c) + len(t.runs.c))
_RUN_NAMES = tuple(column.name for column in t.runs.c)
_WITH_LATEST_RUN = select(
    t.transfers, *(column.label(f"latest_run_{column.name}") for column in t.runs.c)
).select_from(
    t.transfers.outerjoin(
        t.runs,
        (t.runs.c.transfer_id == t.transfers.c.id) & (t.runs.c.number == t.transfers.c.runs),
    )
)
_ACTIVE_BYTES = (
    select(func.coalesce(func.sum(t.tasks.c.bytes_done), 0))
    .where(
        (t.tasks.c.transfer_id == t.transfers.c.id)
        & (t.tasks.c.run == t.transfers.c.runs)
        & t.task_state_is(TaskState.ACTIVE.value)
    )
    .scalar_subquery()
    .label("active_bytes")
)
# Built once: the statement's cache key is then computed once, not at every request.
_ONE_WITH_LATEST_RUN = _WITH_LATEST_RUN.add_columns(_ACTIVE_BYTES).where(
    t.transfers.c.id == bindparam("transfer_id")
)


# The tasks a cancel or a deadline ends at once: none of them is being copied.
_NOT_STARTED = (TaskState.QUEUED.value, TaskState.WAITING.value, TaskState.PAUSED.value)


def _latest_run(row: Row[Any]) -> Run | None:
    """The run whose columns follow the transfer's in a row of ``_WITH_LATEST_RUN``."""
    values = row[_RUN_COLUMNS]
    if values[0] is None:
        return None
    return run_from_mapping(dict(zip(_RUN_NAMES, values, strict=True)))


def spec_hash(new: NewTransfer, spec: dict[str, Any]) -> str:
    """What an idempotent resubmission is compared by: ``spec`` (``new.spec`` as JSON) and
    the schedule as the client wrote it."""
    schedule = new.requested_schedule if new.requested_schedule is not None else new.schedule
    body = {"spec": spec, "schedule": schedule}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _as_stored(new: NewTransfer, spec: dict[str, Any], transfer_id: str, now: datetime) -> Transfer:
    """The transfer just inserted, as reading it back would give it (times in UTC, options
    normalized), without parsing its locations again."""
    return Transfer(
        id=transfer_id,
        scope=new.scope,
        submitter=new.submitter,
        spec=replace(new.spec, options=TransferOptions.from_json(spec["options"])),
        schedule=dict(new.schedule),
        status=TransferStatus.STANDBY,
        created_at=now.astimezone(UTC),
        next_run_at=new.next_run_at.astimezone(UTC),
        runs=0,
        error=None,
        submission_id=new.submission_id,
    )


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
        spec = new.spec.to_json()
        digest = spec_hash(new, spec)
        transfer_id = str(uuid.uuid4())
        try:
            async with self._tx() as conn:
                # A scope comes into being with its first transfer (weight 1, until set).
                await conn.run_sync(
                    self._insert_missing,
                    t.scopes,
                    [{"name": new.scope, "weight": 1, "created_at": now}],
                )
                await conn.execute(
                    insert(t.transfers).values(
                        id=transfer_id,
                        scope=new.scope,
                        submitter=new.submitter,
                        kind=new.spec.kind.value,
                        spec=spec,
                        schedule=new.schedule,
                        status=TransferStatus.STANDBY.value,
                        next_run_at=new.next_run_at,
                        late_at=new.spec.options.late_at(new.next_run_at),
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
        return _as_stored(new, spec, transfer_id, now), True

    async def _existing_submission(self, new: NewTransfer, digest: str) -> Transfer:
        c = t.transfers.c
        row = await self._reading(
            first_row,
            select(t.transfers).where(
                (c.scope == new.scope)
                & (c.submitter == new.submitter)
                & (c.submission_id == new.submission_id)
            ),
        )
        if row is None:  # the insert failed for another reason (e.g. an unknown scope)
            raise InvalidRequest(f"transfer refused: scope {new.scope!r} does not exist")
        if row.spec_hash != digest:
            raise Conflict(
                f"submission id {new.submission_id!r} was used for another transfer ({row.id})"
            )
        return transfer_from_row(row, self._specs)

    async def get_transfer(self, transfer_id: str) -> Transfer:
        row = await self._reading(
            first_row, select(t.transfers).where(t.transfers.c.id == transfer_id)
        )
        if row is None:
            raise TransferNotFound(transfer_id)
        return transfer_from_row(row, self._specs)

    async def transfer_ids_starting(
        self, prefix: str, *, scopes: Sequence[str] | None, limit: int
    ) -> list[str]:
        c = t.transfers.c
        query = select(c.id).where(c.id.startswith(prefix, autoescape=True))
        if scopes is not None:
            query = query.where(c.scope.in_(scopes))
        rows = await self._reading(all_rows, query.order_by(c.id).limit(limit))
        return [row.id for row in rows]

    async def get_transfer_with_run(self, transfer_id: str) -> TransferWithRun:
        row = await self._reading(first_row, _ONE_WITH_LATEST_RUN, {"transfer_id": transfer_id})
        if row is None:
            raise TransferNotFound(transfer_id)
        return TransferWithRun(
            transfer_from_row(row, self._specs), _latest_run(row), int(row.active_bytes)
        )

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
        query = (
            _WITH_LATEST_RUN.where(*conditions(where))
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        if cursor:
            created, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(c.created_at < created, and_(c.created_at == created, c.id < last_id))
            )
        rows = await self._reading(all_rows, query)
        items = [transfer_from_row(r, self._specs) for r in rows[:limit]]
        runs = {r.id: run for r in rows[:limit] if (run := _latest_run(r)) is not None}
        more = len(rows) > limit
        return TransferPage(
            items, _encode_cursor(items[-1].created_at, items[-1].id) if more else None, runs
        )

    async def latest_runs(self, transfers: Sequence[Transfer]) -> dict[str, Run]:
        """The latest run of each transfer that has one, in one query."""
        keys = [(tr.id, tr.runs) for tr in transfers if tr.runs > 0]
        if not keys:
            return {}
        query = select(t.runs).where(tuple_(t.runs.c.transfer_id, t.runs.c.number).in_(keys))
        rows = await self._reading(all_rows, query)
        return {row.transfer_id: run_from_row(row) for row in rows}

    async def list_runs(self, transfer_id: str, *, after: int, limit: int) -> list[Run]:
        r = t.runs.c
        query = (
            select(t.runs)
            .where((r.transfer_id == transfer_id) & (r.number > after))
            .order_by(r.number)
            .limit(limit)
        )
        rows = await self._reading(all_rows, query)
        return [run_from_row(row) for row in rows]

    async def get_run(self, transfer_id: str, number: int) -> Run:
        row = await self._reading(
            first_row,
            select(t.runs).where(
                (t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == number)
            ),
        )
        if row is None:
            raise NotFound(f"transfer {transfer_id} has no run {number}")
        return run_from_row(row)

    # --- cancel --------------------------------------------------------------------
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
            values: dict[str, Any] = {
                "next_run_at": None,
                "late_at": None,
                "error": "canceled",
                "paused_at": None,
                "pause_stops": False,
                "updated_at": now,
            }
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
        waiting = of_run & t.task_state_is(*_NOT_STARTED)
        # A carrier's objects are canceled with it, each counted: no outcome row is written
        # for them (their state is their carrier's).
        objects = await conn.execute(
            update(t.tasks)
            .where(waiting)
            .values(state=TaskState.CANCELED.value, finished_at=now, error="canceled")
            .returning(c.objects)
        )
        canceled = sum(objects.scalars())
        stopping = (
            await conn.execute(
                update(t.tasks)
                .where(of_run & t.task_state_is(TaskState.ACTIVE.value))
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
