"""Passive transfers (the transfer daemon's write-files / read-files): ``ferry push`` and
``ferry pull`` stream each object through the API, the client's machine being one end.

Creating one needs a WRITE token and returns a capability (64 random characters, bound to the
transfer, expiring); the data calls need only that capability, in ``X-Ferry-Capability``. The
server writes or reads the storage through the engine with the usual checksum, temporary name
and overwrite rules, and records each object's outcome like any transfer's."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from ferry.api.schemas import (
    ObjectResult,
    PassiveCreated,
    PassiveObject,
    PullCreate,
    PulledObject,
    PulledSkipped,
    PushCreate,
    SkippedReply,
)
from ferry.api.wire import INT64_MAX
from ferry.domain.locations import Location, parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import (
    PlannedTask,
    TransferKind,
    TransferOptions,
    TransferSpec,
    tree_task,
)
from ferry.engine.copy import CopyOutcome, CopyState
from ferry.engine.passive import Receiver, blocks, describe
from ferry.engine.storages import StorageFS, within
from ferry.engine.trees import walk_tree
from ferry.errors import ChecksumMismatch, InvalidRequest, TransferError, TransientError
from ferry.scheduler.guard import ProtectedLocation, lookup_storage, open_named_storage
from ferry.scheduler.submission import check_grants, check_locations, check_scope
from ferry.server.audit_trail import note_target
from ferry.server.deps import StateDep, Writer
from ferry.server.routes.transfers import present
from ferry.server.state import ServerState
from ferry.store.abc import NewTransfer, Principal, TaskResult
from ferry.store.sql_passive import CLIENT_STORAGE, PASSIVE_AGENT

router = APIRouter(prefix="/transfers", tags=["passive transfers"])

CapabilityHeader = Annotated[str, Header(alias="X-Ferry-Capability", min_length=16)]
RECEIVE_BLOCK = 4 * 1024 * 1024


# --- creating them ---------------------------------------------------------------------------
@router.post("/push", status_code=201, response_model=PassiveCreated)
async def create_push(
    body: PushCreate, state: StateDep, caller: Writer, request: Request
) -> PassiveCreated:
    """A transfer whose objects the client will send into ``destination``."""
    destination = parse_location(body.destination)
    names = [_client_path(o.name) for o in body.objects]
    if len(set(names)) != len(names):
        raise InvalidRequest("the same object name is given twice")
    check_scope(caller, body.scope)
    await check_grants(state.store, caller, body.scope, writes=[destination])
    await check_locations(
        state.store,
        TransferSpec(TransferKind.FILE, (destination,), destination),
        state.protected,
        state.endpoints,
    )
    planned = [
        PlannedTask(Location(CLIENT_STORAGE, name), destination.child(name), obj.size)
        for name, obj in zip(names, body.objects, strict=True)
    ]
    # The folder is allowed; an object's name may still lead into the data directory.
    storage = await lookup_storage(state.store, destination.storage, state.endpoints)
    inside = state.protected.inside_of_url(storage.name, storage.url)
    for task in planned:
        if within(task.destination.path, inside):
            raise ProtectedLocation(task.destination)
    sources = tuple(p.source for p in planned[:1])  # the spec names the client side once
    created = await _create(state, caller, body, "push", sources, destination, planned)
    note_target(request, created.transfer.id)
    return created


@router.post("/pull", status_code=201, response_model=PassiveCreated)
async def create_pull(
    body: PullCreate, state: StateDep, caller: Writer, request: Request
) -> PassiveCreated:
    """A transfer whose objects the client will fetch: each source file, and the contents of
    each source folder, keeping their paths."""
    sources = tuple(parse_location(s) for s in body.sources)
    here = Location(CLIENT_STORAGE, "")
    check_scope(caller, body.scope)
    await check_grants(state.store, caller, body.scope, reads=sources)
    await check_locations(
        state.store,
        TransferSpec(TransferKind.FILE, sources, sources[0]),
        state.protected,
        state.endpoints,
    )
    planned: list[PlannedTask] = []
    for source in sources:
        planned += await _objects_of(state, source, here)
    names = [p.destination.path for p in planned]
    if len(set(names)) != len(names):
        raise InvalidRequest("two sources would land on the same local name")
    created = await _create(state, caller, body, "pull", sources, here, planned)
    note_target(request, created.transfer.id)
    return created


async def _create(
    state: ServerState,
    caller: Principal,
    body: PushCreate | PullCreate,
    direction: str,
    sources: tuple[Location, ...],
    destination: Location,
    planned: list[PlannedTask],
) -> PassiveCreated:
    if body.options.deadline is not None or body.options.late_after is not None:
        # Its client moves the bytes, when it will; the capability's ttl_s bounds it.
        raise InvalidRequest(f"a {direction} has no deadline or late_after: ttl_s bounds it")
    options = TransferOptions.from_json(body.options.model_dump(mode="json"))
    spec = TransferSpec(TransferKind.FILE, sources or (destination,), destination, options)
    new = NewTransfer(body.scope, caller.name, spec, {"kind": "direct"}, state.clock())
    transfer, capability, expires = await state.store.create_passive_transfer(
        new, planned, direction, timedelta(seconds=body.ttl_s)
    )
    side = "source" if direction == "push" else "destination"
    run = (await state.store.latest_runs([transfer])).get(transfer.id)
    return PassiveCreated(
        transfer=present(transfer, run),
        capability=capability,
        expires_at=expires,
        objects=[PassiveObject(name=getattr(p, side).path, size=p.size) for p in planned],
    )


async def _objects_of(state: ServerState, source: Location, here: Location) -> list[PlannedTask]:
    storage = await _open(state, source.storage)
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
        for page in walk_tree(storage, source.path, exclude=state.protected.absolute):
            for entry in page:
                task = tree_task(source, entry.relative, here, entry.size)
                if entry.error is not None:
                    task = PlannedTask(
                        task.source, task.destination, 0, TaskState.FAILED, "permanent", entry.error
                    )
                found.append(task)
        return found

    return await asyncio.to_thread(listing)


# --- data ------------------------------------------------------------------------------------
@router.put("/{transfer_id}/data/{name:path}", response_model=ObjectResult)
async def receive(
    transfer_id: str,
    name: str,
    request: Request,
    state: StateDep,
    capability: CapabilityHeader,
    checksum: Annotated[str | None, Header(alias="X-Ferry-Checksum")] = None,
    size: Annotated[int | None, Header(alias="X-Ferry-Size", ge=0, le=INT64_MAX)] = None,
    mtime: Annotated[float | None, Header(alias="X-Ferry-Mtime")] = None,
) -> ObjectResult:
    """One pushed object: written beside its destination, verified against the size and
    checksum the client announces, then moved into place."""
    await _allowed(state, capability, transfer_id, "push")
    name = _client_path(name)
    task, lease = await state.store.start_passive_task(transfer_id, name, _ttl(state))
    transfer = await state.store.get_transfer(transfer_id)
    options = transfer.spec.options
    storage = await _open(state, task.destination.storage)
    receiver = Receiver(
        storage,
        task.destination.path,
        checksum=options.checksum,
        overwrite=options.overwrite,
        tag=str(task.id),
        attempt=task.attempts,
    )
    try:
        outcome = await asyncio.to_thread(receiver.open, mtime)
        if outcome is None:
            async with _kept_alive(state, task.id, lease):
                outcome = await _stream_in(request, receiver, size, checksum)
    except TransferError as exc:
        return await _failed(state, task.id, lease, name, exc)
    return await _record(state, task.id, lease, name, outcome)


async def _stream_in(
    request: Request, receiver: Receiver, size: int | None, checksum: str | None
) -> CopyOutcome:
    pending = bytearray()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= RECEIVE_BLOCK:
                await asyncio.to_thread(receiver.write, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(receiver.write, bytes(pending))
    except ClientDisconnect as exc:
        await asyncio.to_thread(receiver.abort)
        raise TransientError(f"{receiver.label}: the client stopped sending") from exc
    except BaseException:
        await asyncio.to_thread(receiver.abort)
        raise
    return await asyncio.to_thread(receiver.finish, size, checksum)


@router.get("/{transfer_id}/data/{name:path}")
async def send(
    transfer_id: str, name: str, state: StateDep, capability: CapabilityHeader
) -> StreamingResponse:
    """One pulled object, with its size and checksum in the headers; the client reports what
    it received at ``POST …/received/{name}``."""
    await _allowed(state, capability, transfer_id, "pull")
    name = _client_path(name)
    task, lease = await state.store.start_passive_task(transfer_id, name, _ttl(state))
    transfer = await state.store.get_transfer(transfer_id)
    storage = await _open(state, task.source.storage)
    try:
        size, digest = await asyncio.to_thread(
            describe, storage, task.source.path, transfer.spec.options.checksum
        )
    except TransferError as exc:
        result = await _failed(state, task.id, lease, name, exc)
        raise InvalidRequest(f"{task.source}: {result.error}") from exc
    await state.store.note_checksum(task.id, digest)
    headers = {"Content-Length": str(size), "X-Ferry-Checksum": digest}
    body = _stream_out(state, task.id, lease, storage, task.source.path)
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)


async def _stream_out(
    state: ServerState, task_id: int, lease: str, storage: StorageFS, path: str
) -> AsyncIterator[bytes]:
    reader: Iterator[bytes] = blocks(storage, path)
    try:
        async with _kept_alive(state, task_id, lease):
            while (block := await asyncio.to_thread(next, reader, None)) is not None:
                yield block
    finally:
        await asyncio.to_thread(getattr(reader, "close", lambda: None))


@contextlib.asynccontextmanager
async def _kept_alive(state: ServerState, task_id: int, lease: str) -> AsyncIterator[None]:
    """While an object streams, its lease is extended (the reaper must not take it back)."""
    ttl = _ttl(state)

    async def extend() -> None:
        while True:
            await asyncio.sleep(ttl.total_seconds() / 3)
            await state.store.extend_passive_lease(task_id, lease, ttl)

    keeper = asyncio.create_task(extend())
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


@router.post("/{transfer_id}/received/{name:path}", response_model=ObjectResult)
async def received(
    transfer_id: str,
    name: str,
    body: PulledObject,
    state: StateDep,
    capability: CapabilityHeader,
) -> ObjectResult:
    """What the client kept of a pulled object: DONE only with the checksum the server read."""
    await _allowed(state, capability, transfer_id, "pull")
    name = _client_path(name)
    if body.state == "SKIPPED":
        task, lease = await state.store.start_passive_task(transfer_id, name, _ttl(state))
        why = "the client has it already"
        return await _record(
            state, task.id, lease, name, CopyOutcome(CopyState.SKIPPED, reason=why)
        )
    task, lease = await state.store.held_passive_task(transfer_id, name)
    if body.state == "FAILED":
        return await _failed(state, task.id, lease, name, TransientError(body.error or "failed"))
    if body.checksum != task.checksum:
        mismatch = ChecksumMismatch(
            f"{CLIENT_STORAGE}:{name}", task.checksum or "", body.checksum or ""
        )
        return await _failed(state, task.id, lease, name, mismatch)
    outcome = CopyOutcome(CopyState.DONE, body.bytes, body.checksum)
    return await _record(state, task.id, lease, name, outcome)


@router.post("/{transfer_id}/skipped", response_model=SkippedReply)
async def skipped(
    transfer_id: str, body: PulledSkipped, state: StateDep, capability: CapabilityHeader
) -> SkippedReply:
    """The objects of a pull the client already has (overwrite never), SKIPPED in one call:
    a pull run again over a big tree spent most of its time saying so one object at a time."""
    await _allowed(state, capability, transfer_id, "pull")
    names = [_client_path(name) for name in body.names]
    count = await state.store.skip_passive_objects(transfer_id, names)
    if count:
        state.wakeups.finalize.set()
    return SkippedReply(skipped=count)


@router.post("/{transfer_id}/close", response_model=None)
async def close(transfer_id: str, state: StateDep, capability: CapabilityHeader) -> dict[str, Any]:
    """The client is done: objects it did not send or fetch fail, the capability ends."""
    direction = await _allowed(state, capability, transfer_id, None)
    verb = "sent" if direction == "push" else "fetched"
    unsent = await state.store.close_passive_transfer(transfer_id, f"not {verb} by the client")
    state.wakeups.finalize.set()
    return {"transfer": transfer_id, "not_transferred": unsent}


# --- helpers ---------------------------------------------------------------------------------
async def _allowed(
    state: ServerState, capability: str, transfer_id: str, direction: str | None
) -> str:
    allowed = await state.store.check_capability(capability, transfer_id)
    if direction is not None and allowed != direction:
        raise InvalidRequest(f"this transfer is a {allowed}, not a {direction}")
    return allowed


def _client_path(name: str) -> str:
    path = Location(CLIENT_STORAGE, "").child(name).path
    if not path:
        raise InvalidRequest("an object needs a name")
    return path


def _ttl(state: ServerState) -> timedelta:
    return timedelta(seconds=state.settings.lease_ttl_s)


async def _open(state: ServerState, name: str) -> StorageFS:
    return await open_named_storage(state.store, name, state.endpoints, state.protected)


async def _record(
    state: ServerState, task_id: int, lease: str, name: str, outcome: CopyOutcome
) -> ObjectResult:
    result = TaskResult(
        task_id,
        lease,
        TaskState(outcome.state.value),
        outcome.bytes,
        outcome.checksum,
        error=outcome.reason,
    )
    state.metrics.count_results(await state.store.record_results(PASSIVE_AGENT, [result]))
    state.wakeups.finalize.set()
    return ObjectResult(
        name=name, state=outcome.state.value, bytes=outcome.bytes, checksum=outcome.checksum
    )


async def _failed(
    state: ServerState, task_id: int, lease: str, name: str, error: TransferError
) -> ObjectResult:
    result = TaskResult(
        task_id,
        lease,
        TaskState.FAILED,
        error_class=error.error_class,
        error=error.message,
        retryable=error.retryable,
    )
    state.metrics.count_results(await state.store.record_results(PASSIVE_AGENT, [result]))
    state.wakeups.finalize.set()
    return ObjectResult(
        name=name,
        state="FAILED",
        error_class=error.error_class,
        error=error.message,
        retryable=error.retryable,
    )
