"""Passive transfers (the transfer daemon's write-files / read-files): ``ferry push`` and
``ferry pull`` stream each object through the API, the client's machine being one end.

Creating one needs a WRITE token and returns a capability (64 random characters, bound to the
transfer, expiring); the data calls need only that capability, in ``X-Ferry-Capability``. The
server writes or reads the storage in ``scheduler.passive`` with the usual checksum, temporary
name and overwrite rules, and records each object's outcome here like any transfer's."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions, TransferSpec
from ferry.errors import ChecksumMismatch, InvalidRequest, TransferError, TransientError
from ferry.scheduler.guard import open_named_storage
from ferry.scheduler.passive import Streams, failed, pull_objects, refuse_protected_names
from ferry.scheduler.submission import check_grants, check_locations, check_scope
from ferry.server.audit_trail import note_target
from ferry.server.deps import StateDep, Writer
from ferry.server.routes.transfers import present
from ferry.server.state import ServerState
from ferry.store.abc import NewTransfer, Principal, TaskResult
from ferry.store.sql_passive import CLIENT_STORAGE, PASSIVE_AGENT

router = APIRouter(prefix="/transfers", tags=["passive transfers"])

CapabilityHeader = Annotated[str, Header(alias="X-Ferry-Capability", min_length=16)]


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
    await refuse_protected_names(state.store, state.endpoints, state.protected, planned)
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
        storage = await open_named_storage(
            state.store, source.storage, state.endpoints, state.protected
        )
        planned += await pull_objects(storage, source, here, state.protected.absolute)
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
    storage = await open_named_storage(
        state.store, task.destination.storage, state.endpoints, state.protected
    )
    label = f"{storage.name}:{task.destination.path}"
    chunks = _sent(request, label)
    result = await _streams(state).receive(
        storage,
        task,
        lease,
        transfer.spec.options,
        chunks,
        size=size,
        checksum=checksum,
        mtime=mtime,
    )
    return await _record(state, name, result)


async def _sent(request: Request, label: str) -> AsyncIterator[bytes]:
    """The request's body as it arrives; a client that goes away stopped sending ``label``."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise TransientError(f"{label}: the client stopped sending") from exc


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
    storage = await open_named_storage(
        state.store, task.source.storage, state.endpoints, state.protected
    )
    streams = _streams(state)
    try:
        size, digest = await streams.describe(storage, task.source.path, transfer.spec.options)
    except TransferError as exc:
        answer = await _record(state, name, failed(task.id, lease, exc))
        raise InvalidRequest(f"{task.source}: {answer.error}") from exc
    await state.store.note_checksum(task.id, digest)
    headers = {"Content-Length": str(size), "X-Ferry-Checksum": digest}
    body = streams.blocks(storage, task.source.path, task_id=task.id, lease=lease)
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)


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
        return await _record(state, name, TaskResult(task.id, lease, TaskState.SKIPPED, error=why))
    task, lease = await state.store.held_passive_task(transfer_id, name)
    if body.state == "FAILED":
        error = TransientError(body.error or "failed")
        return await _record(state, name, failed(task.id, lease, error))
    if body.checksum != task.checksum:
        mismatch = ChecksumMismatch(
            f"{CLIENT_STORAGE}:{name}", task.checksum or "", body.checksum or ""
        )
        return await _record(state, name, failed(task.id, lease, mismatch))
    done = TaskResult(task.id, lease, TaskState.DONE, body.bytes, body.checksum)
    return await _record(state, name, done)


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
        state.wakeups.objects_ended()
    return SkippedReply(skipped=count)


@router.post("/{transfer_id}/close", response_model=None)
async def close(transfer_id: str, state: StateDep, capability: CapabilityHeader) -> dict[str, Any]:
    """The client is done: objects it did not send or fetch fail, the capability ends."""
    direction = await _allowed(state, capability, transfer_id, None)
    verb = "sent" if direction == "push" else "fetched"
    unsent = await state.store.close_passive_transfer(transfer_id, f"not {verb} by the client")
    state.wakeups.objects_ended()
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


def _streams(state: ServerState) -> Streams:
    return Streams(state.store, _ttl(state))


async def _record(state: ServerState, name: str, result: TaskResult) -> ObjectResult:
    """Record how an object ended, and answer the client with it."""
    state.metrics.count_results(await state.store.record_results(PASSIVE_AGENT, [result]))
    state.wakeups.objects_ended()
    if result.state is TaskState.FAILED:
        return ObjectResult(
            name=name,
            state="FAILED",
            error_class=result.error_class,
            error=result.error,
            retryable=result.retryable,
        )
    return ObjectResult(
        name=name, state=result.state.value, bytes=result.bytes, checksum=result.checksum
    )
