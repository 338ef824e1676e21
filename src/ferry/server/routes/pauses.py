"""Pause and resume: a transfer (who may cancel it may pause it) and an agent (drained, by an
administrator). Each call is audited as every state-changing call is (``audit_trail``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from ferry.api.schemas import AgentPublic, PauseRequest, PauseResult
from ferry.domain.events import AgentPaused, AgentResumed, TransferPaused, TransferResumed
from ferry.server.deps import Administrator, StateDep, Writer
from ferry.server.routes.agents import present_agent
from ferry.server.routes.transfers import resolve_id, visible_to

router = APIRouter(tags=["pauses"])
log = logging.getLogger("ferry.api")

_TRANSFER_CONFLICTS: dict[int | str, dict[str, str]] = {
    404: {"description": "No such transfer (or not one the caller may see)"},
    409: {
        "description": "The transfer has finished, is being canceled, is a push or pull, is"
        " paused already (pause) or is not paused (resume); or a short id is ambiguous"
    },
}
_AGENT_CONFLICTS: dict[int | str, dict[str, str]] = {
    404: {"description": "No agent of that name or id"},
    409: {"description": "The agent is paused already (pause) or is not paused (resume)"},
}


@router.post(
    "/transfers/{transfer_id}/pause", response_model=PauseResult, responses=_TRANSFER_CONFLICTS
)
async def pause_transfer(
    transfer_id: str, state: StateDep, caller: Writer, body: PauseRequest | None = None
) -> PauseResult:
    """No new copies of its objects start, and a periodic transfer's occurrences are skipped
    (each recorded as a SKIPPED run) until it is resumed; its active copies finish, or with
    ``now`` stop and go back to the queue. Its status does not change; its deadline holds."""
    transfer_id = await resolve_id(state, caller, transfer_id)
    visible_to(caller, await state.store.get_transfer(transfer_id))
    stop = body is not None and body.now
    outcome = await state.store.pause_transfer(transfer_id, stop=stop)
    stopping = outcome.stopping_tasks
    log.info("transfer %s paused: %d objects held, %d copies stopping", transfer_id,
             outcome.objects, stopping)  # fmt: skip
    state.wakeups.events.publish(
        TransferPaused(transfer=transfer_id, paused=outcome.objects, stopping=stopping)
    )
    said = "paused"
    if stopping:
        said += f"; {stopping} active object{'s are' if stopping != 1 else ' is'} being stopped"
    return PauseResult(
        id=transfer_id,
        status=outcome.transfer.status.value,
        paused_at=outcome.transfer.paused_at,
        outcome=said,
        objects=outcome.objects,
        stopping_objects=stopping,
    )


@router.post(
    "/transfers/{transfer_id}/resume", response_model=PauseResult, responses=_TRANSFER_CONFLICTS
)
async def resume_transfer(transfer_id: str, state: StateDep, caller: Writer) -> PauseResult:
    """Its paused objects go back to the queue; a periodic transfer goes on with its next
    occurrence, a one-shot one due meanwhile starts now."""
    transfer_id = await resolve_id(state, caller, transfer_id)
    visible_to(caller, await state.store.get_transfer(transfer_id))
    outcome = await state.store.resume_transfer(transfer_id)
    log.info("transfer %s resumed: %d objects queued again", transfer_id, outcome.objects)
    state.wakeups.work_queued()
    state.wakeups.transfers_may_be_due()
    state.wakeups.events.publish(TransferResumed(transfer=transfer_id, resumed=outcome.objects))
    return PauseResult(
        id=transfer_id,
        status=outcome.transfer.status.value,
        paused_at=None,
        outcome="resumed",
        objects=outcome.objects,
    )


@router.post("/agents/{agent}/pause", response_model=AgentPublic, responses=_AGENT_CONFLICTS)
async def pause_agent(agent: str, state: StateDep, caller: Administrator) -> AgentPublic:
    """Drain the agent (by name or id): it gets no new leases and finishes what it holds.
    It stays paused when it restarts, until resumed."""
    paused = await state.store.pause_agent(agent)
    log.info("agent %s (%s) paused by %s", paused.name, paused.id, caller.name)
    state.wakeups.events.publish(AgentPaused(agent=paused.id, name=paused.name))
    stats = await state.store.agent_statistics([paused.id])
    return present_agent(paused, stats.get(paused.id))


@router.post("/agents/{agent}/resume", response_model=AgentPublic, responses=_AGENT_CONFLICTS)
async def resume_agent(agent: str, state: StateDep, caller: Administrator) -> AgentPublic:
    """The agent (by name or id) leases again."""
    resumed = await state.store.resume_agent(agent)
    log.info("agent %s (%s) resumed by %s", resumed.name, resumed.id, caller.name)
    state.wakeups.work_queued()
    state.wakeups.events.publish(AgentResumed(agent=resumed.id, name=resumed.name))
    stats = await state.store.agent_statistics([resumed.id])
    return present_agent(resumed, stats.get(resumed.id))
