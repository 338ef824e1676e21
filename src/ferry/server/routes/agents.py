"""The agent protocol (DESIGN §5): register, lease (long-poll), report, heartbeat."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ferry.api.protocol import (
    PROTOCOL,
    AgentLeft,
    AgentRegister,
    AgentRegistered,
    Heartbeat,
    HeartbeatReply,
    LeasedChunk,
    LeasedTaskPublic,
    LeaseReply,
    LeaseRequest,
    ReportedState,
    ReportReply,
    Results,
    StorageAccess,
    TaskReport,
    decode,
    encode,
    json_schema,
)
from ferry.api.schemas import AgentInvitation, AgentInvite, AgentPublic, AgentStatsPublic
from ferry.domain.events import TasksChanged
from ferry.domain.states import TaskState
from ferry.domain.transfers import Agent
from ferry.errors import AuthError, Forbidden, ServerStopping
from ferry.server.audit_trail import note_target
from ferry.server.deps import Administrator, Daemon, Reader, Registrant, StateDep
from ferry.server.state import ServerState
from ferry.store.abc import (
    AgentStatistics,
    CarriedChunk,
    LeasedTask,
    Principal,
    TaskChange,
    TaskResult,
)

router = APIRouter(prefix="/agents", tags=["agents"])
log = logging.getLogger("ferry.api")
security = logging.getLogger("ferry.security")

POLL_SLICE_S = 0.5
MAX_ACTIVE_IN_DUMP = 100


def _own(caller: Principal, agent_id: str) -> None:
    if caller.agent_id != agent_id:
        raise Forbidden("DAEMON of this agent")


def present_agent(agent: Agent, stats: AgentStatistics | None) -> AgentPublic:
    return AgentPublic(
        id=agent.id,
        name=agent.name,
        host=agent.host,
        state=agent.state.value,
        version=agent.status.get("version"),
        active=stats.ongoing if stats else 0,
        stats=_stats(stats),
        capabilities=agent.capabilities,
        last_heartbeat=agent.last_heartbeat,
        status=agent.status,
        paused_at=agent.paused_at,
    )


def _stats(stats: AgentStatistics | None) -> AgentStatsPublic:
    if stats is None:
        return AgentStatsPublic(
            ongoing=0, succeeded=0, failed=0, canceled=0, total=0, bytes=0, throughput=0.0
        )
    return AgentStatsPublic(
        ongoing=stats.ongoing,
        succeeded=stats.succeeded,
        failed=stats.failed,
        canceled=stats.canceled,
        total=stats.total,
        bytes=stats.bytes,
        throughput=stats.throughput,
    )


@router.post("/invite", status_code=201, response_model=AgentInvitation)
async def invite(
    body: AgentInvite, state: StateDep, caller: Administrator, request: Request
) -> AgentInvitation:
    """A one-time secret for a remote agent (the transfer daemon's --id): it registers once
    with it, under this name only, before it expires."""
    note_target(request, body.name)
    ttl = timedelta(seconds=body.ttl_s)
    secret = await state.store.issue_agent_secret(body.name, ttl)
    security.info(
        "agent secret issued for %s by %s (valid %.0f s)", body.name, caller.name, body.ttl_s
    )
    return AgentInvitation(name=body.name, secret=secret, expires_at=state.clock() + ttl)


# A first registration carries a one-time secret and no token; a token re-registers: the
# document says that either will do (an empty requirement beside the bearer).
@router.post(
    "/register",
    response_model=AgentRegistered,
    openapi_extra={"security": [{}]},
)
async def register(
    body: AgentRegister, state: StateDep, caller: Registrant, request: Request
) -> Response:
    note_target(request, body.name)
    try:
        agent, token = await state.store.register_agent(
            secret=body.secret,
            principal=caller,
            name=body.name,
            host=body.host,
            capabilities=body.capabilities,
        )
    except AuthError as exc:
        security.warning("registration of agent %s (%s) refused: %s", body.name, body.host, exc)
        raise
    security.info("agent %s registered from %s", body.name, body.host or "?")
    state.wakeups.work_queued()  # leases the previous incarnation held may be free again
    registered = AgentRegistered(
        id=agent.id,
        name=agent.name,
        token=token,
        heartbeat_s=state.settings.heartbeat_s,
        lease_ttl_s=state.settings.lease_ttl_s,
        protocol=PROTOCOL,
    )
    return _answer(registered)


@router.post("/{agent_id}/lease", response_model=LeaseReply)
async def lease(
    agent_id: str, body: LeaseRequest, request: Request, state: StateDep, caller: Daemon
) -> Response:
    _own(caller, agent_id)
    if state.stopping.is_set():
        raise ServerStopping()
    ttl = timedelta(seconds=state.settings.lease_ttl_s)
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    deadline = arrived + body.wait_s
    # When to look at the agent's heartbeats next: not on each wake-up, which come many a
    # second while reports flow, but once a heartbeat interval after the first.
    listen_at = arrived + state.settings.heartbeat_s
    while True:
        if await request.is_disconnected():  # the agent went away: lease it nothing
            log.debug("agent %s: lease request abandoned", agent_id)
            return _answer(LeaseReply(tasks=[], storages={}))
        if loop.time() > listen_at:
            listen_at = loop.time() + state.settings.heartbeat_s
            if await _silent(state, agent_id):
                # Frozen or cut off while its request waited: what was taken back from it for
                # its silence must not go back to it, to be lost a second time.
                log.info(
                    "agent %s: silent for a lease TTL: its waiting lease gets nothing", agent_id
                )
                return _answer(LeaseReply(tasks=[], storages={}))
        # Work that a report or an expansion brings while this lease is under way wakes it.
        fired = state.wakeups.tasks_available.watch()
        tasks = await state.store.lease_tasks(agent_id, limit=body.max_tasks, ttl=ttl)
        remaining = deadline - loop.time()
        if tasks or remaining <= 0 or state.stopping.is_set():
            break
        await state.wakeups.tasks_available.wait(fired, min(remaining, POLL_SLICE_S))
    log.debug("agent %s: leased %d tasks", agent_id, len(tasks))
    if tasks:
        state.metrics.lease_latency.observe(loop.time() - arrived)
    storages = await _storages_for(
        state,
        {n for t in tasks for n in (t.source.storage, t.destination.storage)}
        | {r.storage for t in tasks for r in t.replicas},
    )
    reply = LeaseReply(
        tasks=[leased_public(task) for task in tasks],
        storages=storages,
        scopes={task.scope: task.weight for task in tasks},
    )
    return _answer(reply)


async def _silent(state: ServerState, agent_id: str) -> bool:
    """Whether the agent has sent no heartbeat for a lease TTL: its leases lapsed."""
    heard = (await state.store.get_agent(agent_id)).last_heartbeat
    ttl = timedelta(seconds=state.settings.lease_ttl_s)
    return heard is not None and state.clock() - heard > ttl


def _answer(record: object) -> Response:
    """A protocol record as the agent reads it, written by the protocol's own encoding (the
    route's ``response_model`` documents it; FastAPI's validation of a reply of a thousand
    tasks cost more than the lease's transaction)."""
    return Response(encode(record), media_type="application/json")


def leased_public(task: LeasedTask) -> LeasedTaskPublic:
    """A leased task as its agent receives it."""
    return LeasedTaskPublic(
        id=task.id,
        lease=task.lease,
        transfer=task.transfer_id,
        run=task.run,
        source=str(task.source),
        destination=str(task.destination),
        size=task.size,
        attempt=task.attempt,
        checksum=task.options.checksum,
        overwrite=task.options.overwrite,
        sync=task.options.sync,
        unzip=task.options.unzip,
        unzip_max_bytes=task.options.unzip_max_bytes,
        skip_source_errors=task.options.skip_source_errors,
        verify_source=task.options.verify_source,
        expected_checksum=task.options.expected_checksum,
        folder=task.folder,
        bandwidth=task.options.bandwidth,
        throttled=task.throttled,
        scope=task.scope,
        priority=task.priority,
        chunk=_carried(task.chunk),
        replicas=[str(r) for r in task.replicas] if task.replicas else None,
    )


def _carried(chunk: CarriedChunk | None) -> LeasedChunk | None:
    """A carrier's objects as its agent receives them: the stored list sent as it is, never
    made into Python objects on the server."""
    if chunk is None:
        return None
    objects: Any = orjson.Fragment(chunk.objects)
    return LeasedChunk(first=chunk.first, objects=objects, only=chunk.only)


async def _storages_for(state: ServerState, names: set[str]) -> dict[str, StorageAccess]:
    access = {}
    for name in sorted(names):
        storage = await state.storages.get(name, state.clock())
        # Credentials travel only here: to an authenticated agent, inside its lease.
        options = storage.backend_options()
        # What its agents must refuse inside it: the server's data directory, if it holds it.
        protected = state.protected.inside_of_url(storage.name, storage.url)
        access[name] = StorageAccess(url=storage.url, options=options, protected=protected)
    return access


# A report's body is read by the protocol's decoder, parsed and validated in one pass: through
# FastAPI's body parameter (parsed into dictionaries first, then validated) it was a twentieth
# of the server's time on a tree of small files. Its schema, written here, is the decoder's.
_REPORT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": json_schema(list[TaskReport])}},
}


@router.post(
    "/{agent_id}/report", response_model=ReportReply, openapi_extra={"requestBody": _REPORT_BODY}
)
async def report(agent_id: str, request: Request, state: StateDep, caller: Daemon) -> Response:
    _own(caller, agent_id)
    try:
        body = decode(list[TaskReport], await request.body())
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc
    results = results_of(body)
    changes = await state.store.record_results(agent_id, results)
    log.debug("agent %s: %d results, %d applied", agent_id, len(results), len(changes))
    state.metrics.count_results(changes)
    state.wakeups.objects_ended()
    state.wakeups.work_queued()
    publish_task_changes(state, changes)
    return _answer(ReportReply(accepted=len(changes), ignored=len(results) - len(changes)))


_RESULTS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": json_schema(Results)}},
}


@router.post(
    "/{agent_id}/results", response_model=ReportReply, openapi_extra={"requestBody": _RESULTS_BODY}
)
async def results(agent_id: str, request: Request, state: StateDep, caller: Daemon) -> Response:
    """What an agent of protocol 2 reports: single tasks as ``/report`` takes them, and the
    objects of its carriers that ended since their last report (a carrier's last report
    ends it). A report sent twice changes nothing."""
    _own(caller, agent_id)
    try:
        body = decode(Results, await request.body())
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc
    tasks = results_of(body.tasks)
    changes = await state.store.record_results(agent_id, tasks) if tasks else []
    chunks = await state.store.record_chunk_results(agent_id, body.chunks)
    log.debug(
        "agent %s: %d results, %d applied; %d objects of chunks, %d applied",
        agent_id,
        len(tasks),
        len(changes),
        chunks.accepted + chunks.ignored,
        chunks.accepted,
    )
    state.metrics.count_results(changes)
    state.metrics.count_chunk_results(chunks.carriers)
    state.wakeups.objects_ended()
    state.wakeups.work_queued()
    publish_task_changes(state, changes + [tally.change for tally in chunks.carriers])
    accepted = len(changes) + chunks.accepted
    return _answer(
        ReportReply(accepted=accepted, ignored=len(tasks) - len(changes) + chunks.ignored)
    )


def results_of(reports: list[TaskReport]) -> list[TaskResult]:
    """An agent's reports as the store records them."""
    return [
        TaskResult(
            task_id=r.task,
            lease=r.lease,
            state=_STORED[r.state],
            bytes=r.bytes,
            checksum=r.checksum,
            error_class=r.error_class,
            error=r.error,
            retryable=r.retryable,
            started=r.started,
            resumed=min(r.resumed, r.bytes),
            replica=r.replica,
        )
        for r in reports
    ]


# A reported state as the store takes it: a task given back (RELEASED) is QUEUED again.
_STORED = {
    ReportedState.DONE: TaskState.DONE,
    ReportedState.SKIPPED: TaskState.SKIPPED,
    ReportedState.FAILED: TaskState.FAILED,
    ReportedState.CANCELED: TaskState.CANCELED,
    ReportedState.RELEASED: TaskState.QUEUED,
}


def publish_task_changes(state: ServerState, changes: list[TaskChange]) -> None:
    if not state.wakeups.events.wants(TasksChanged.kind):
        return  # nobody listens for them: no need to build the batches
    by_transfer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        by_transfer[change.transfer_id].append(
            {"task": change.task_id, "state": change.state.value, "error": change.error}
        )
    for transfer, batch in by_transfer.items():
        state.wakeups.events.publish(TasksChanged(transfer=transfer, changes=batch))


@router.post("/{agent_id}/heartbeat", response_model=HeartbeatReply)
async def heartbeat(agent_id: str, body: Heartbeat, state: StateDep, caller: Daemon) -> Response:
    _own(caller, agent_id)
    moving = [list(pair) for pair in body.active if pair[1] > 0][:MAX_ACTIVE_IN_DUMP]
    status = {**body.state, "held": len(body.active), "active": moving}
    ttl = timedelta(seconds=state.settings.lease_ttl_s)
    held = [task for task, _bytes in body.active]
    progress = {task: done for task, done in body.active if done > 0}
    cancel = await state.store.record_heartbeat(agent_id, status, ttl, held, progress)
    shares = await state.store.bandwidth_shares(agent_id, held)
    reply = HeartbeatReply(
        cancel=cancel,
        bandwidth=shares.rates,
        commands=state.commands.take(agent_id),
        unlimited=shares.unlimited,
        next_change_s=shares.next_change_s,
    )
    return _answer(reply)


@router.post("/{agent_id}/leave", response_model=AgentLeft)
async def leave(agent_id: str, state: StateDep, caller: Daemon) -> Response:
    """The agent is going: it is RETIRED and the leases it still holds go back to the queue."""
    _own(caller, agent_id)
    released = await state.store.retire_agent(agent_id)
    log.info("agent %s left; %d leases it never received given back", agent_id, released)
    if released:
        state.wakeups.work_queued()
    return _answer(AgentLeft(released=released))


@router.get("", response_model=list[AgentPublic])
async def list_agents(state: StateDep, caller: Reader) -> list[AgentPublic]:
    agents = await state.store.list_agents()
    stats = await state.store.agent_statistics([a.id for a in agents])
    return [present_agent(a, stats.get(a.id)) for a in agents]


@router.get("/{agent_id}", response_model=AgentPublic)
async def get_agent(agent_id: str, state: StateDep, caller: Reader) -> AgentPublic:
    agent = await state.store.get_agent(agent_id)
    stats = await state.store.agent_statistics([agent.id])
    return present_agent(agent, stats.get(agent.id))


@router.get("/{agent_id}/stats", response_model=AgentStatsPublic)
async def get_agent_stats(agent_id: str, state: StateDep, caller: Reader) -> AgentStatsPublic:
    agent = await state.store.get_agent(agent_id)  # 404 for an unknown agent
    return _stats((await state.store.agent_statistics([agent.id])).get(agent.id))
