"""Dry runs: what a transfer, or the next run of one, would do now (``scheduler.plans``)."""

from __future__ import annotations

from fastapi import APIRouter

from ferry.api.schemas import PlanEntryPublic, PlanPublic, TransferCreate
from ferry.scheduler.plans import Plan, Planner
from ferry.scheduler.submission import check_submission
from ferry.server.deps import StateDep, Writer
from ferry.server.routes.transfers import AMBIGUOUS, resolve_id, spec_from, visible_to
from ferry.server.state import ServerState

router = APIRouter(prefix="/transfers", tags=["transfers"])


@router.post("/plan", response_model=PlanPublic)
async def plan_submission(body: TransferCreate, state: StateDep, caller: Writer) -> PlanPublic:
    """What a run of this submission would do now (for a periodic one: its next run), object
    by object, without storing it or moving a byte: checked as a submission is."""
    spec = spec_from(body)
    await check_submission(state.store, caller, spec, body.scope, state.protected, state.endpoints)
    return present_plan(await _planner(state).plan(spec))


@router.get("/{transfer_id}/plan", response_model=PlanPublic, responses=AMBIGUOUS)
async def plan_transfer(transfer_id: str, state: StateDep, caller: Writer) -> PlanPublic:
    """What the transfer's next run would do if it began now (its storages as they are)."""
    transfer_id = await resolve_id(state, caller, transfer_id)
    transfer = visible_to(caller, await state.store.get_transfer(transfer_id))
    return present_plan(await _planner(state).plan(transfer.spec))


def _planner(state: ServerState) -> Planner:
    return Planner(state.store, state.protected, state.endpoints, state.clock)


def present_plan(plan: Plan) -> PlanPublic:
    return PlanPublic(
        entries=[
            PlanEntryPublic(
                action=e.action.value,
                source=e.source,
                destination=e.destination,
                size=e.size,
                reason=e.reason,
            )
            for e in plan.entries
        ],
        counts={action: plan.counts[action] for action in _ACTIONS},
        bytes={action: plan.bytes[action] for action in _ACTIONS},
        filtered=plan.filtered,
        truncated=plan.truncated,
        deletion=plan.deletion,
    )


_ACTIONS = ("copy", "skip", "fail", "delete")
