"""Passive transfers in SQL: created with their run and tasks at once (the client named every
object), reached with a capability bound to the transfer, never leased to an agent."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from ferry.domain.locations import Location
from ferry.domain.sites import CLIENT_SITE
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import PlannedTask, Transfer
from ferry.errors import CapabilityRefused, NotFound
from ferry.store import tables as t
from ferry.store.abc import NewTransfer, TaskResult
from ferry.store.sql_base import all_rows, first_row, hash_secret
from ferry.store.sql_bulk import execute_many
from ferry.store.sql_insert import TASK_INSERT, task_rows
from ferry.store.sql_rows import task_from_row
from ferry.store.sql_runs import RunsMixin
from ferry.store.sql_tasks import RunCounter, TasksMixin, held_rows, leased_rows
from ferry.store.sql_transfers import TransfersMixin

CLIENT_STORAGE = "client"  # the client's side of a passive transfer's locations
PASSIVE_AGENT = "client"  # who holds a passive task's lease: the client, through the API


class PassiveMixin(TransfersMixin, RunsMixin, TasksMixin):
    async def create_passive_transfer(
        self, new: NewTransfer, planned: list[PlannedTask], direction: str, ttl: timedelta
    ) -> tuple[Transfer, str, datetime]:
        """Insert the transfer ONGOING with its one run expanded and its tasks QUEUED for the
        client; return it with a capability (64 characters) valid for ``ttl``."""
        now = self.clock()
        transfer_id = str(uuid.uuid4())
        capability = secrets.token_urlsafe(48)  # 64 characters
        async with self._tx() as conn:
            await conn.run_sync(
                self._insert_missing,
                t.scopes,
                [{"name": new.scope, "weight": 1, "created_at": now}],
            )
            await conn.execute(insert(t.transfers).values(**_transfer_row(transfer_id, new, now)))
            await conn.execute(insert(t.runs).values(**_run_row(transfer_id, planned, now)))
            sites = await conn.run_sync(self._sites_of, new.spec.storages())
            sites[CLIENT_STORAGE] = CLIENT_SITE
            options = new.spec.options
            rows = task_rows(transfer_id, new.scope, options, 1, planned, sites)
            await conn.run_sync(execute_many, TASK_INSERT, rows)
            await conn.execute(
                insert(t.capabilities).values(
                    hash=hash_secret(capability),
                    transfer_id=transfer_id,
                    direction=direction,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return await self.get_transfer(transfer_id), capability, now + ttl

    async def check_capability(self, capability: str, transfer_id: str) -> str:
        """The direction (push, pull) the capability allows on this transfer."""
        row = await self._reading(
            first_row,
            select(t.capabilities).where(t.capabilities.c.hash == hash_secret(capability)),
        )
        if row is None or row.transfer_id != transfer_id:
            raise CapabilityRefused("unknown, or for another transfer")
        if row.closed_at is not None:
            raise CapabilityRefused("the transfer is closed")
        if row.expires_at <= self.clock():
            raise CapabilityRefused("expired")
        return str(row.direction)

    async def start_passive_task(
        self, transfer_id: str, client_path: str, ttl: timedelta
    ) -> tuple[Any, str]:
        """Lease to the client the task whose client-side location is ``client_path``; return
        the task and its lease. ``NotFound`` when no such object is waiting."""
        c = t.tasks.c
        here = str(Location(CLIENT_STORAGE, client_path))
        now = self.clock()
        lease = secrets.token_hex(16)
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    update(t.tasks)
                    .where(
                        (c.transfer_id == transfer_id)
                        & (c.run == 1)
                        & ((c.source == here) | (c.destination == here))
                        & t.task_state_is(TaskState.QUEUED.value, TaskState.WAITING.value)
                        & ~c.cancel_requested
                    )
                    .values(**_client_lease(lease, now, now + ttl))
                    .returning(t.tasks)
                )
            ).first()
        if row is None:
            raise NotFound(f"{client_path!r} is not an object waiting in transfer {transfer_id}")
        return task_from_row(row), lease

    async def skip_passive_objects(self, transfer_id: str, client_paths: Sequence[str]) -> int:
        """The objects of a pull whose copy the client already has: each SKIPPED, with its
        attempt, in one transaction whatever their number. A path not waiting (unknown, or
        already ended) is left alone; return how many were skipped."""
        c = t.tasks.c
        here = [str(Location(CLIENT_STORAGE, path)) for path in client_paths]
        now = self.clock()
        lease = secrets.token_hex(16)
        waiting = (
            (c.transfer_id == transfer_id)
            & (c.run == 1)
            & c.destination.in_(here)  # the object's unique index
            & t.task_state_is(TaskState.QUEUED.value, TaskState.WAITING.value)
            & ~c.cancel_requested
        )
        async with self._tx() as conn:
            # Locked first, in id order (PostgreSQL), as every other locker of task rows does;
            # from then on they stay waiting until this transaction ends.
            locking = select(c.id).where(waiting).order_by(c.id).with_for_update()
            ids = list((await conn.execute(locking)).scalars())
            if not ids:
                return 0
            mine = c.id.in_(ids)
            await conn.execute(update(t.tasks).where(mine).values(**_client_lease(lease, now, now)))
            rows = await conn.run_sync(held_rows, leased_rows(mine))
            why = "the client has it already (overwrite: never)"
            skipped = {
                row.id: TaskResult(row.id, lease, TaskState.SKIPPED, error=why) for row in rows
            }
            await conn.run_sync(self._apply_results, PASSIVE_AGENT, rows, skipped, now)
        return len(rows)

    async def held_passive_task(self, transfer_id: str, client_path: str) -> tuple[Any, str]:
        """The client's ACTIVE task for ``client_path``, with its lease."""
        c = t.tasks.c
        here = str(Location(CLIENT_STORAGE, client_path))
        row = await self._reading(
            first_row,
            select(t.tasks).where(
                (c.transfer_id == transfer_id)
                & ((c.source == here) | (c.destination == here))
                & t.task_state_is(TaskState.ACTIVE.value)
                & (c.lease_agent == PASSIVE_AGENT)
            ),
        )
        if row is None:
            raise NotFound(f"{client_path!r} is not being fetched in transfer {transfer_id}")
        return task_from_row(row), str(row.lease_token)

    async def extend_passive_lease(self, task_id: int, lease: str, ttl: timedelta) -> None:
        """The object is still moving: its lease lives ``ttl`` more."""
        c = t.tasks.c
        async with self._tx() as conn:
            await conn.execute(
                update(t.tasks)
                .where((c.id == task_id) & (c.lease_token == lease))
                .values(lease_expires_at=self.clock() + ttl)
            )

    async def note_checksum(self, task_id: int, checksum: str) -> None:
        """The checksum the server read before sending a pulled object."""
        async with self._tx() as conn:
            await conn.execute(
                update(t.tasks).where(t.tasks.c.id == task_id).values(checksum=checksum)
            )

    async def close_passive_transfer(self, transfer_id: str, why: str) -> int:
        """Close its capability; objects the client did not send fail with ``why``. Return
        how many failed that way."""
        c = t.tasks.c
        now = self.clock()
        async with self._tx() as conn:
            closed = await conn.execute(
                update(t.capabilities)
                .where(
                    (t.capabilities.c.transfer_id == transfer_id)
                    & t.capabilities.c.closed_at.is_(None)
                )
                .values(closed_at=now)
                .returning(t.capabilities.c.direction)
            )
            drop_active = "pull" in closed.scalars().all()
            waiting = t.task_state_is(TaskState.QUEUED.value, TaskState.WAITING.value)
            # An object the client had started and dropped (Ctrl-C in a pull) ends too. One
            # still arriving in a push does not: its own request records how it ended (it was
            # FAILED here though it landed whole, when the client went before its answer).
            dropped = t.task_state_is(TaskState.ACTIVE.value) & (c.lease_agent == PASSIVE_AGENT)
            ending = (waiting | dropped) if drop_active else waiting
            unsent = (c.transfer_id == transfer_id) & ending
            rows = (
                await conn.execute(
                    update(t.tasks)
                    .where(unsent)
                    .values(
                        state=TaskState.FAILED.value,
                        error_class="permanent",
                        error=why,
                        finished_at=now,
                        lease_agent=None,
                        lease_token=None,
                        lease_expires_at=None,
                    )
                    .returning(c.id, c.run)
                )
            ).all()
            counter = RunCounter()
            for row in rows:
                counter.add(transfer_id, row.run, TaskState.FAILED)
            await conn.run_sync(counter.apply, now)
        return len(rows)

    async def expired_passive_transfers(self, now: datetime) -> list[str]:
        cap = t.capabilities.c
        rows = await self._reading(
            all_rows,
            select(cap.transfer_id).where(cap.closed_at.is_(None) & (cap.expires_at <= now)),
        )
        return [r.transfer_id for r in rows]


def _client_lease(lease: str, now: datetime, expires_at: datetime) -> dict[str, Any]:
    """The values that make a waiting task the client's, as an attempt under ``lease``."""
    c = t.tasks.c
    return {
        "state": TaskState.ACTIVE.value,
        "lease_agent": PASSIVE_AGENT,
        "lease_token": lease,
        "leased_at": now,
        "lease_expires_at": expires_at,
        "not_before": None,
        "attempts": c.attempts + 1,
    }


def _transfer_row(transfer_id: str, new: NewTransfer, now: datetime) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "scope": new.scope,
        "submitter": new.submitter,
        "kind": new.spec.kind.value,
        "spec": new.spec.to_json(),
        "schedule": {"kind": "direct"},
        "schedule_kind": "direct",
        "status": TransferStatus.ONGOING.value,
        "next_run_at": None,
        "runs": 1,
        "submission_id": None,
        "spec_hash": uuid.uuid4().hex,
        "created_at": now,
        "updated_at": now,
    }


def _run_row(transfer_id: str, planned: list[PlannedTask], now: datetime) -> dict[str, Any]:
    return {
        "transfer_id": transfer_id,
        "number": 1,
        "status": RunStatus.ONGOING.value,
        "due_at": now,
        "started_at": now,
        "occurrences": 1,
        "skipped_occurrences": 0,
        "expanded": True,
        "total": len(planned),
        "done": 0,
        "failed": 0,
        "skipped": 0,
        "canceled": 0,
        "bytes": 0,
        "size_total": sum(p.size or 0 for p in planned),
        "filtered": 0,
    }
