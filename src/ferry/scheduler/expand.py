"""The expand loop (FTS Allocate): turn each new run into tasks, listing trees page by page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from ferry.domain.locations import Location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, Run, Transfer, TransferKind, file_task, tree_task
from ferry.engine.errors import classify
from ferry.engine.storages import StorageFS, open_storage
from ferry.engine.trees import TreeEntry, walk_tree
from ferry.scheduler.guard import ProtectedPaths, within
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import Store

log = logging.getLogger("ferry.scheduler")


class ExpandLoop(Loop):
    name = "expand"
    singleton = True
    interval = 5.0

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        protected: ProtectedPaths | None = None,
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.protected = protected or ProtectedPaths([])

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.expand

    async def run_once(self) -> None:
        for transfer, run in await self.store.runs_to_expand(limit=50):
            await self.expand(transfer, run)

    async def expand(self, transfer: Transfer, run: Run) -> None:
        """Create every task of the run. Whatever goes wrong, the run is marked expanded with
        the reason, so it ends (FAILED if nothing could be listed) instead of blocking the loop."""
        error: str | None = None
        try:
            if transfer.spec.kind is TransferKind.FILE:
                planned = [file_task(s, transfer.spec.destination) for s in transfer.spec.sources]
                await self.store.add_tasks(transfer, run.number, planned)
            else:
                for source in transfer.spec.sources:
                    await self._expand_tree(transfer, run, source)
        except Exception as exc:
            error = f"listing failed: {classify(exc, str(transfer.spec.sources[0])).message}"
            log.warning("transfer %s: run %d: %s", transfer.id, run.number, error)
        await self.store.mark_expanded(transfer.id, run.number, error)
        self.wakeups.tasks_available.fire()
        self.wakeups.finalize.set()

    async def _expand_tree(self, transfer: Transfer, run: Run, source: Location) -> None:
        storage = await self._open(source.storage)
        destination = transfer.spec.destination
        refused = await self._protected_in(destination.storage)
        pages = walk_tree(storage, source.path, exclude=self.protected.absolute)
        while True:
            try:
                page = await asyncio.to_thread(_next_page, pages)
            except (FileNotFoundError, NotADirectoryError) as exc:
                await self.store.add_tasks(
                    transfer, run.number, [_unlistable(source, destination, exc)]
                )
                return
            if page is None:
                return
            planned = [_plan(source, entry, destination, refused) for entry in page]
            if not await self.store.add_tasks(transfer, run.number, planned):
                return  # canceled meanwhile: stop listing
            self.wakeups.tasks_available.fire()

    async def _open(self, name: str) -> StorageFS:
        storage = await self.store.get_storage(name)
        kwargs = {**storage.options, **storage.credentials.reveal()}
        return await asyncio.to_thread(open_storage, storage.name, storage.url, kwargs)

    async def _protected_in(self, name: str) -> list[str]:
        """The protected folders inside a local destination (a remote one holds none)."""
        storage = await self.store.get_storage(name)
        if not storage.url.startswith("file:"):
            return []
        return self.protected.inside_of(await self._open(name))


def _next_page(pages: Iterator[list[TreeEntry]]) -> list[TreeEntry] | None:
    return next(pages, None)


def _plan(
    source: Location, entry: TreeEntry, destination: Location, refused: list[str]
) -> PlannedTask:
    task = tree_task(source, entry.relative, destination, entry.size)
    if entry.error is not None:
        return PlannedTask(
            task.source, task.destination, 0, TaskState.FAILED, "permanent", entry.error
        )
    if within(task.destination.path, refused):
        why = f"{task.destination} is inside the server's data directory: refused"
        return PlannedTask(
            task.source, task.destination, entry.size, TaskState.FAILED, "permanent", why
        )
    return task


def _unlistable(source: Location, destination: Location, exc: OSError) -> PlannedTask:
    """A tree source that cannot be listed is one failed object, not a failed submission:
    a scheduled transfer's source may appear later."""
    if isinstance(exc, NotADirectoryError):
        message = f"not a directory: {source} (a tree transfer needs a folder)"
        error_class = "permanent"
    else:
        error = classify(exc, str(source))
        message, error_class = error.message, error.error_class
    return PlannedTask(
        source, destination, state=TaskState.FAILED, error_class=error_class, error=message
    )
