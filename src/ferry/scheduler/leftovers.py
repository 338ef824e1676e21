"""Temporary files nobody is left to remove. An attempt lost with its lease (its agent killed,
its lease expired) may leave its temporary file beside the destination, and a resumable copy
that failed (engine.resume) its ``.part`` and checkpoint record; the task's next attempt
continues or removes them as it begins, but a task canceled meanwhile, out of attempts, or
ended before its copy began has no next attempt. When a run ends, the server removes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from ferry.domain.locations import parse_location
from ferry.engine.requests import temporary_name
from ferry.engine.resume import record_name
from ferry.engine.storages import StorageFS
from ferry.store.abc import LostAttempt, TransferStore

log = logging.getLogger("ferry.scheduler")


async def remove_leftovers(
    store: TransferStore,
    transfer_id: str,
    run: int,
    open_storage: Callable[[str], Awaitable[StorageFS]],
) -> int:
    """Remove the temporary files the run's lost attempts may have left; return how many were
    there. A storage that cannot be opened or written is logged and left as it is."""
    by_storage: dict[str, list[LostAttempt]] = defaultdict(list)
    for lost in await store.lost_attempts(transfer_id, run):
        by_storage[parse_location(lost.destination).storage].append(lost)
    removed = 0
    for name, attempts in by_storage.items():
        try:
            storage = await open_storage(name)
            removed += await asyncio.to_thread(_remove, storage, attempts)
        except Exception as exc:
            log.warning(
                "transfer %s: run %d: temporary files left on %s: %s", transfer_id, run, name, exc
            )
    return removed


def _remove(storage: StorageFS, attempts: list[LostAttempt]) -> int:
    removed = 0
    for lost in attempts:
        destination = storage.resolve(parse_location(lost.destination).path)
        part = temporary_name(destination, lost.tag or str(lost.task), lost.number)
        with contextlib.suppress(FileNotFoundError):
            storage.fs.rm_file(part)
            removed += 1
        with contextlib.suppress(FileNotFoundError):  # a resumable copy's checkpoint record
            storage.fs.rm_file(record_name(part))
    return removed
