"""The storage side of passive transfers (``ferry push`` and ``ferry pull``): what the server
reads and writes for them, so that their routes (``server.routes.passive``) only parse, check
the capability and record.

A pull's objects are listed here (``pull_objects``); a pushed object is written beside its
destination, verified against the size and checksum the client announces, and moved into
place (``receive``); a pulled object is described (size and checksum) and then read block by
block (``describe``, ``blocks``). While an object streams, its lease is extended so that the
reaper does not take it back. Each ends as the ``TaskResult`` its route records."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import AsyncIterator, Collection, Iterator
from datetime import timedelta

from ferry.domain.locations import Location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, Task, TransferOptions, tree_task
from ferry.engine.copy import CopyOutcome
from ferry.engine.passive import Receiver
from ferry.engine.passive import blocks as read_blocks
from ferry.engine.passive import describe as describe_object
from ferry.engine.storages import StorageFS, within
from ferry.engine.trees import walk_tree
from ferry.errors import InvalidRequest, ProtectedPath, TransferError
from ferry.scheduler.guard import EndpointPolicy, ProtectedPaths, lookup_storage
from ferry.store.abc import PassiveStore, RegistryStore, TaskResult

RECEIVE_BLOCK = 4 * 1024 * 1024  # a pushed object reaches the storage in writes of this size


async def pull_objects(
    storage: StorageFS, source: Location, here: Location, exclude: Collection[str]
) -> list[PlannedTask]:
    """What a pull of ``source`` fetches into ``here`` (the client's side): the file itself,
    or every object below the folder keeping its path (one that cannot be listed, FAILED with
    the reason). ``exclude``: absolute paths no listing enters (the server's own)."""
    full = storage.resolve(source.path)
    if not await asyncio.to_thread(storage.fs.isdir, full):
        name = posixpath.basename(source.path)
        if not name:
            raise InvalidRequest(f"{source} names a storage root: pull its contents instead")
        try:
            size = (await asyncio.to_thread(storage.fs.info, full)).get("size")
        except OSError:
            size = None  # not there (yet): the object fails when the client asks for it
        return [PlannedTask(source, here.child(name), size)]

    def listing() -> list[PlannedTask]:
        found = []
        for page in walk_tree(storage, source.path, exclude=exclude):
            for entry in page:
                task = tree_task(source, entry.relative, here, entry.size)
                if entry.error is not None:
                    task = PlannedTask(
                        task.source, task.destination, 0, TaskState.FAILED, "permanent", entry.error
                    )
                found.append(task)
        return found

    return await asyncio.to_thread(listing)


async def refuse_protected_names(
    store: RegistryStore,
    endpoints: EndpointPolicy,
    protected: ProtectedPaths,
    planned: list[PlannedTask],
) -> None:
    """A push's destination folder was checked; an object's name may still lead into a
    protected path (the server's data directory) below it."""
    if not planned:
        return
    storage = await lookup_storage(store, planned[0].destination.storage, endpoints)
    inside = protected.inside_of_url(storage.name, storage.url)
    for task in planned:
        if within(task.destination.path, inside):
            raise ProtectedPath(task.destination.storage, task.destination.path)


class Streams:
    """The objects of passive transfers as they stream, each under its task's ``lease``,
    extended every third of ``ttl`` while it moves."""

    def __init__(self, store: PassiveStore, ttl: timedelta) -> None:
        self.store, self.ttl = store, ttl

    async def receive(
        self,
        storage: StorageFS,
        task: Task,
        lease: str,
        options: TransferOptions,
        chunks: AsyncIterator[bytes],
        *,
        size: int | None,
        checksum: str | None,
        mtime: float | None,
    ) -> TaskResult:
        """The pushed object of ``task``, from ``chunks`` into its destination in
        ``storage``: written beside it, verified against ``size`` and ``checksum``, moved into
        place (or SKIPPED, as the transfer's overwrite rule says, before a byte is read)."""
        task_id = task.id
        receiver = Receiver(
            storage,
            task.destination.path,
            checksum=options.checksum,
            overwrite=options.overwrite,
            tag=str(task_id),
            attempt=task.attempts,
        )
        try:
            outcome = await asyncio.to_thread(receiver.open, mtime)
            if outcome is None:
                async with self.kept_alive(task_id, lease):
                    outcome = await _write(receiver, chunks, size, checksum)
        except TransferError as exc:
            return failed(task_id, lease, exc)
        return _ended(task_id, lease, outcome)

    async def describe(
        self, storage: StorageFS, path: str, options: TransferOptions
    ) -> tuple[int, str]:
        """The size of the object at ``path`` and its checksum (the transfer's algorithm)."""
        return await asyncio.to_thread(describe_object, storage, path, options.checksum)

    async def blocks(
        self, storage: StorageFS, path: str, *, task_id: int, lease: str
    ) -> AsyncIterator[bytes]:
        """The object at ``path``, block by block, its lease kept while it is read."""
        reader: Iterator[bytes] = read_blocks(storage, path)
        try:
            async with self.kept_alive(task_id, lease):
                while (block := await asyncio.to_thread(next, reader, None)) is not None:
                    yield block
        finally:
            await asyncio.to_thread(getattr(reader, "close", lambda: None))

    @contextlib.asynccontextmanager
    async def kept_alive(self, task_id: int, lease: str) -> AsyncIterator[None]:
        """While an object streams, its lease is extended (the reaper must not take it back)."""

        async def extend() -> None:
            while True:
                await asyncio.sleep(self.ttl.total_seconds() / 3)
                await self.store.extend_passive_lease(task_id, lease, self.ttl)

        keeper = asyncio.create_task(extend())
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


def failed(task_id: int, lease: str, error: TransferError) -> TaskResult:
    """The result of an object that ``error`` ended."""
    return TaskResult(
        task_id,
        lease,
        TaskState.FAILED,
        error_class=error.error_class,
        error=error.message,
        retryable=error.retryable,
    )


def _ended(task_id: int, lease: str, outcome: CopyOutcome) -> TaskResult:
    state = TaskState(outcome.state.value)
    return TaskResult(task_id, lease, state, outcome.bytes, outcome.checksum, error=outcome.reason)


async def _write(
    receiver: Receiver, chunks: AsyncIterator[bytes], size: int | None, checksum: str | None
) -> CopyOutcome:
    pending = bytearray()
    try:
        async for chunk in chunks:
            pending += chunk
            if len(pending) >= RECEIVE_BLOCK:
                await asyncio.to_thread(receiver.write, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(receiver.write, bytes(pending))
    except BaseException:
        await asyncio.to_thread(receiver.abort)
        raise
    return await asyncio.to_thread(receiver.finish, size, checksum)
