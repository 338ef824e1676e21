"""The expand loop (FTS Allocate): turn each new run into tasks, listing trees page by page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import replace

from ferry.daemon.logs import REDACTOR
from ferry.domain.chunks import PlannedChunk, pack
from ferry.domain.filters import ListingFilter
from ferry.domain.locations import Location
from ferry.domain.states import TaskState
from ferry.domain.transfers import (
    ListedThrough,
    PlannedTask,
    Run,
    Transfer,
    TransferKind,
    TransferOptions,
    file_task,
    tree_task,
)
from ferry.engine.errors import classify
from ferry.engine.storages import within
from ferry.engine.trees import TreeEntry, walk_tree
from ferry.errors import AccessDenied, SourceNotFound
from ferry.scheduler.guard import StorageLoop, lookup_storage

log = logging.getLogger("ferry.scheduler")


class ExpandLoop(StorageLoop):
    name = "expand"
    singleton = True
    interval = 5.0

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.expand

    async def run_once(self) -> None:
        """List every pending run, one page of each per pass (round-robin), until none is
        left: a run submitted while a huge tree is being listed has its first tasks queued
        after one page of each listing, not after the biggest tree ends."""
        listings: dict[tuple[str, int], _Listing] = {}
        while pending := await self.store.runs_to_expand(limit=50):
            # Runs not listed yet go first: their first page waits on no other's next one.
            pending.sort(key=lambda item: (item[0].id, item[1].number) in listings)
            going = {}
            for transfer, run in pending:
                key = (transfer.id, run.number)
                listing = listings.get(key) or _Listing(self, transfer, run)
                if not await listing.step():
                    going[key] = listing
            listings = going

    async def expand(self, transfer: Transfer, run: Run) -> None:
        """Create every task of one run at once."""
        listing = _Listing(self, transfer, run)
        while not await listing.step():
            pass

    async def _protected_in(self, name: str) -> list[str]:
        """The protected folders inside a local destination (a remote one holds none)."""
        storage = await lookup_storage(self.store, name, self.endpoints)
        if not storage.url.startswith("file:"):
            return []
        return self.protected.inside_of(await self._open(name))


class _Listing:
    """The expansion of one run, a page at a time. Whatever goes wrong, the run is marked
    expanded with the reason, so it ends (FAILED if nothing could be listed) instead of
    blocking the loop."""

    def __init__(self, loop: ExpandLoop, transfer: Transfer, run: Run) -> None:
        self.loop = loop
        self.transfer = transfer
        self.run = run
        # A run whose listing began before a restart goes on from where its last page ended.
        listed = run.listed
        self.source_index = listed.source if listed else 0  # the sources before it are listed
        self.after = listed.cursor if listed else None
        self.sources = list(transfer.spec.sources)[self.source_index :]
        self.pages: Iterator[list[TreeEntry]] | None = None
        self.refused: list[str] = []
        self.marked = False  # expanded with its last tasks, in the same transaction
        self.remote: bool | None = None  # known after its first page
        self.filters = ListingFilter.of(
            transfer.spec.options.filters, run.started_at or loop.clock()
        )

    async def step(self) -> bool:
        """Add the next page of tasks; True once the run is fully expanded."""
        try:
            finished = await self._next()
        except Exception as exc:
            source = self.transfer.spec.sources[0]
            error = REDACTOR.redact(f"listing failed: {classify(exc, str(source)).message}")
            log.warning("transfer %s: run %d: %s", self.transfer.id, self.run.number, error)
            await self._finish(error)
            return True
        if finished:
            await self._finish(None)
        return finished

    async def _finish(self, error: str | None) -> None:
        if not self.marked:
            await self.loop.store.mark_expanded(self.transfer.id, self.run.number, error)
        self.loop.wakeups.work_queued()
        self.loop.wakeups.objects_ended()

    async def _next(self) -> bool:
        store, spec = self.loop.store, self.transfer.spec
        if spec.kind is TransferKind.FILE:
            planned = [
                file_task(places[0], spec.destination, places[1:]) for places in spec.alternatives()
            ]
            await store.add_tasks(self.transfer, self.run.number, planned, expanded=True)
            self.marked = True
            return True
        if not self.sources:
            return True
        source = self.sources[0]
        if self.pages is None:
            storage = await self.loop._open(source.storage)
            self.refused = await self.loop._protected_in(spec.destination.storage)
            protected = self.loop.protected.absolute
            self.pages = walk_tree(storage, source.path, exclude=protected, after=self.after)
        try:
            page = await asyncio.to_thread(_next_page, self.pages)
        except (FileNotFoundError, NotADirectoryError) as exc:
            failed = [unlistable(source, spec.destination, exc, spec.options)]
            await store.add_tasks(self.transfer, self.run.number, failed)
            page = None
        if page is None:
            self.sources.pop(0)
            self.pages, self.after = None, None
            self.source_index += 1
            return not self.sources
        kept = self.filters.kept(page) if self.filters else page
        listed_tasks = [
            plan_entry(source, entry, spec.destination, self.refused, spec.options)
            for entry in kept
        ]
        page_tasks: list[PlannedTask | PlannedChunk] = list(listed_tasks)
        if self.run.numbered:  # small objects travel in chunks (docs/small-files.md)
            remote = await self._remote(source.storage, spec.destination.storage)
            page_tasks = pack(listed_tasks, spec, source, remote=remote)
        listed = ListedThrough(self.source_index, page[-1].cursor)
        filtered = len(page) - len(kept)
        run = self.run.number
        if not await store.add_tasks(
            self.transfer, run, page_tasks, listed=listed, filtered=filtered
        ):
            return True  # canceled meanwhile: stop listing
        self.loop.wakeups.work_queued()
        return False

    async def _remote(self, *storages: str) -> bool:
        """Whether either storage is reached over a network (its chunks are smaller)."""
        if self.remote is None:
            urls = [
                (await lookup_storage(self.loop.store, name, self.loop.endpoints)).url
                for name in storages
            ]
            self.remote = not all(url.startswith("file:") for url in urls)
        return self.remote


def _next_page(pages: Iterator[list[TreeEntry]]) -> list[TreeEntry] | None:
    return next(pages, None)


def plan_entry(
    source: Location,
    entry: TreeEntry,
    destination: Location,
    refused: list[str],
    options: TransferOptions,
) -> PlannedTask:
    task = tree_task(source, entry.relative, destination, entry.size)
    if entry.skipped is not None:  # a link not followed: SKIPPED, with the reason
        return replace(task, size=0, state=TaskState.SKIPPED, error=entry.skipped)
    if entry.folder:
        task = replace(task, folder=True)
    if entry.error is not None and entry.denied and options.skip_source_errors:
        return replace(task, size=0, folder=False, state=TaskState.SKIPPED, error=entry.error)
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


def unlistable(
    source: Location, destination: Location, exc: OSError, options: TransferOptions
) -> PlannedTask:
    """A tree source that cannot be listed is one failed object, not a failed submission:
    a scheduled transfer's source may appear later. With ``skip_source_errors``, a source
    not found is SKIPPED, with the reason."""
    if isinstance(exc, NotADirectoryError):
        message = f"not a directory: {source} (a tree transfer needs a folder)"
        error_class = "permanent"
    else:
        error = classify(exc, str(source))
        message, error_class = REDACTOR.redact(error.message), error.error_class
        if options.skip_source_errors and isinstance(error, SourceNotFound | AccessDenied):
            return PlannedTask(source, destination, state=TaskState.SKIPPED, error=message)
    return PlannedTask(
        source, destination, state=TaskState.FAILED, error_class=error_class, error=message
    )
