"""Accepting a transfer: check what it names, store it in STANDBY, wake the due loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ferry.domain.transfers import Transfer, TransferSpec
from ferry.errors import InvalidRequest, StorageNotFound
from ferry.scheduler.loop import Wakeups
from ferry.store.abc import NewTransfer, Principal
from ferry.store.sql import SqlStore

DEFAULT_SCOPE = "default"


async def submit_transfer(
    store: SqlStore,
    wakeups: Wakeups,
    principal: Principal,
    spec: TransferSpec,
    *,
    submission_id: str | None,
    clock: Callable[[], datetime],
) -> tuple[Transfer, bool]:
    """Store the transfer and return it with whether it is new (an idempotent resubmission
    returns the existing one). Sources need not exist yet; their storages must."""
    for name in sorted(spec.storages()):
        try:
            await store.get_storage(name)
        except StorageNotFound as exc:
            raise InvalidRequest(str(exc)) from exc
    schedule: dict[str, Any] = {"kind": "direct"}
    new = NewTransfer(
        scope=DEFAULT_SCOPE,
        submitter=principal.name,
        spec=spec,
        schedule=schedule,
        next_run_at=clock(),
        submission_id=submission_id,
    )
    transfer, created = await store.create_transfer(new)
    if created:
        wakeups.due.set()
    return transfer, created
