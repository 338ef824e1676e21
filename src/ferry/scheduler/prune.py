"""The deletion step of ``--delete-extra`` runs: once every object of a run has ended, the
destination files the source's listing does not have are deleted by the server, the way it
lists trees, and recorded as DELETED objects of the run. Nothing is deleted when a copy of the
run failed or the run was canceled, nor when there are more than ``max_delete`` to delete: the
run's note says why. A dry run finds the same files with ``extra_files``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator
from datetime import datetime

from ferry.daemon.logs import REDACTOR
from ferry.domain.filters import ListingFilter
from ferry.domain.locations import Location
from ferry.domain.states import TaskState, TransferStatus
from ferry.domain.sync import EXTRA, DeletionState
from ferry.domain.transfers import PlannedTask, Run, Transfer, TransferSpec
from ferry.engine.errors import classify
from ferry.engine.extras import delete_file, extras
from ferry.engine.storages import StorageFS
from ferry.engine.trees import TreeEntry, walk_tree
from ferry.scheduler.guard import StorageLoop

log = logging.getLogger("ferry.scheduler")


def extra_files(
    source: StorageFS,
    destination: StorageFS,
    spec: TransferSpec,
    started: datetime,
    exclude: Collection[str] = (),
) -> Iterator[PlannedTask]:
    """The files ``--delete-extra`` deletes for a run of ``spec`` begun at ``started`` (its
    filters' ages count from then): each as a planned DELETED object, at the place its source
    would have. ``exclude``: folders no walk enters (the server's data directory)."""
    root = spec.sources[0]
    filters = ListingFilter.of(spec.options.filters, started)
    listed = _entries(walk_tree(source, root.path, exclude=exclude))
    held = _entries(_walk_or_nothing(destination, spec.destination.path, exclude))
    keeps = filters.keeps if filters else _everything
    for entry in extras(listed, held, keeps):
        yield PlannedTask(
            root.child(entry.relative),
            spec.destination.child(entry.relative),
            entry.size,
            TaskState.DELETED,
            error=EXTRA,
        )


def _walk_or_nothing(
    storage: StorageFS, path: str, exclude: Collection[str]
) -> Iterator[list[TreeEntry]]:
    """A walk of the destination folder; none if it is not there yet (nothing to delete)."""
    try:
        yield from walk_tree(storage, path, exclude=exclude)
    except FileNotFoundError:
        return


def _entries(pages: Iterator[list[TreeEntry]]) -> Iterator[TreeEntry]:
    for page in pages:
        yield from page


def _everything(_entry: TreeEntry) -> bool:
    return True


def held_back(transfer: Transfer, run: Run) -> str | None:
    """Why the run deletes nothing whatever its destination holds, or ``None``."""
    c = run.counts
    if transfer.status is TransferStatus.CANCELED or run.past_deadline or c.canceled:
        return "nothing deleted: the run was canceled"
    if c.failed:
        return f"nothing deleted: {c.failed} of {c.total} objects failed"
    if run.error:
        return f"nothing deleted: the source was not listed whole ({run.error})"
    return None


class Pruner:
    """Runs the deletion step of each run that waits on it (the finalize loop's first step)."""

    def __init__(self, loop: StorageLoop) -> None:
        self.loop = loop

    async def prune_ready(self) -> int:
        """Run the step of every run waiting on it; how many were."""
        ready = await self.loop.store.runs_to_prune(limit=20)
        for transfer, run in ready:
            state, note, deleted = await self._prune(transfer, run)
            await self.loop.store.record_deletion(transfer, run.number, state, note, deleted)
            log.info("transfer %s: run %d: %s", transfer.id, run.number, note)
        return len(ready)

    async def _prune(
        self, transfer: Transfer, run: Run
    ) -> tuple[DeletionState, str, list[PlannedTask]]:
        if (why := held_back(transfer, run)) is not None:
            return DeletionState.HELD, why, []
        spec, limit = transfer.spec, transfer.spec.options.delete_limit
        try:
            source = await self.loop._open(spec.sources[0].storage)
            destination = await self.loop._open(spec.destination.storage)
            started = run.started_at or self.loop.clock()
            found = await asyncio.to_thread(
                _first, extra_files(source, destination, spec, started, self._excluded), limit
            )
        except Exception as exc:
            error = REDACTOR.redact(classify(exc, str(spec.destination)).message)
            return DeletionState.FAILED, f"nothing deleted: {error}", []
        wanted, count = found
        if count > limit:
            return (
                DeletionState.FAILED,
                f"nothing deleted: {count} files to delete, more than max-delete {limit}",
                [],
            )
        deleted, failure = await asyncio.to_thread(_delete, destination, spec.destination, wanted)
        if failure is not None:
            note = f"deleted {len(deleted)} of {count} extra files, then: {failure}"
            return DeletionState.FAILED, note, deleted
        return DeletionState.DONE, f"deleted {count} extra files", deleted

    @property
    def _excluded(self) -> frozenset[str]:
        return self.loop.protected.absolute


def _first(found: Iterator[PlannedTask], limit: int) -> tuple[list[PlannedTask], int]:
    """The first ``limit`` + 1 of ``found``, and how many there are in all."""
    kept: list[PlannedTask] = []
    count = 0
    for planned in found:
        count += 1
        if len(kept) <= limit:
            kept.append(planned)
    return kept, count


def _delete(
    storage: StorageFS, folder: Location, wanted: list[PlannedTask]
) -> tuple[list[PlannedTask], str | None]:
    """Delete each of ``wanted`` in order; those deleted, and the error that stopped it."""
    deleted: list[PlannedTask] = []
    for planned in wanted:
        relative = planned.destination.path[len(folder.path) :].lstrip("/")
        try:
            delete_file(storage, folder.path, relative)
        except FileNotFoundError:
            continue  # gone meanwhile: nothing was deleted
        except Exception as exc:
            error = classify(exc, str(planned.destination)).message
            return deleted, REDACTOR.redact(error)
        deleted.append(planned)
    return deleted, None
