"""Transfers: submit, list, monitor, cancel, outcomes (gCube's scheduler service)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ferry.api.schemas import (
    CancelResult,
    DeletionPublic,
    ObjectCounts,
    Outcomes,
    ProgressPublic,
    RunPublic,
    TransferCreate,
    TransferList,
    TransferPublic,
)
from ferry.api.wire import INT64_MAX
from ferry.domain.events import TransferChanged
from ferry.domain.locations import parse_location
from ferry.domain.replicas import parse_sources
from ferry.domain.schedules import ScheduleKind
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import (
    Role,
    Run,
    Transfer,
    TransferKind,
    TransferOptions,
    TransferSpec,
    run_progress,
)
from ferry.errors import AmbiguousId, Conflict, InvalidRequest, TransferNotFound
from ferry.scheduler.submission import submit_transfer
from ferry.server.audit_trail import note_target
from ferry.server.deps import Reader, StateDep, Writer
from ferry.server.outcome_pages import outcomes_page
from ferry.server.state import ServerState
from ferry.store.abc import Principal, TransferFilter
from ferry.store.sql_passive import CLIENT_STORAGE

router = APIRouter(prefix="/transfers", tags=["transfers"])

NOT_STARTED = "The transfer has not started yet"
SHORT_ID_MIN = 6  # characters of an id that may stand for it, when only one id starts so
FULL_ID = 36
CANDIDATES_SHOWN = 10
SEARCH_MAX = 200
SEARCH = (
    "text search: transfers whose id starts with it, that have it as a label, or whose sources"
    " or destination contain it (literally: % and _ are no wildcards; ASCII letters in either"
    " case)"
)
AMBIGUOUS: dict[int | str, dict[str, Any]] = {
    409: {"description": "A short id that starts more than one transfer's id"}
}


def visible_to(caller: Principal, transfer: Transfer) -> Transfer:
    """The transfer, if the caller may see it: an administrator sees every one, a user those
    of its scopes; to anyone else it does not exist (404, as an unknown id)."""
    if caller.role is not Role.ADMINISTRATOR and transfer.scope not in caller.scopes:
        raise TransferNotFound(transfer.id)
    return transfer


async def resolve_id(state: ServerState, caller: Principal, transfer_id: str) -> str:
    """The full id that ``transfer_id`` stands for: itself, or, for a short id of at least
    ``SHORT_ID_MIN`` characters, the one id the caller may see that starts with it (none:
    404; several: ``AmbiguousId``, 409, naming them)."""
    if not SHORT_ID_MIN <= len(transfer_id) < FULL_ID:
        return transfer_id
    scopes = None if caller.role is Role.ADMINISTRATOR else caller.scopes
    found = await state.store.transfer_ids_starting(
        transfer_id, scopes=scopes, limit=CANDIDATES_SHOWN
    )
    if not found:
        raise TransferNotFound(transfer_id)
    if len(found) > 1:
        raise AmbiguousId(transfer_id, found)
    return found[0]


def present(transfer: Transfer, run: Run | None, caller: Principal | None = None) -> TransferPublic:
    """What the API shows of a transfer; its notify URL (it may hold a token of its own) only
    to those who may write in its scope."""
    spec = transfer.spec.to_json()
    if caller is not None and not caller.role.allows(Role.WRITE):
        spec["options"].pop("notify", None)
    counts = run.counts if run is not None else None
    return TransferPublic(
        id=transfer.id,
        status=transfer.status.value,
        kind=transfer.spec.kind.value,
        scope=transfer.scope,
        submitter=transfer.submitter,
        sources=spec["sources"],
        destination=spec["destination"],
        options=spec["options"],
        schedule=transfer.schedule,
        created_at=transfer.created_at,
        next_run_at=transfer.next_run_at,
        runs=transfer.runs,
        objects=ObjectCounts(
            total=counts.total if counts else 0,
            done=counts.done if counts else 0,
            failed=counts.failed if counts else 0,
            skipped=counts.skipped if counts else 0,
            canceled=counts.canceled if counts else 0,
            filtered=counts.filtered if counts else 0,
        ),
        bytes=counts.bytes if counts else 0,
        error=transfer.error,
        submission_id=transfer.submission_id,
        paused_at=transfer.paused_at,
        pause_stops=transfer.pause_stops,
    )


def spec_from(body: TransferCreate) -> TransferSpec:
    if body.kind is TransferKind.TREE and len(body.sources) != 1:
        raise InvalidRequest("a tree transfer has exactly one source folder")
    sources, replicas = parse_sources(body.sources)
    return TransferSpec(
        kind=body.kind,
        sources=sources,
        destination=parse_location(body.destination),
        options=TransferOptions.from_json(body.options.model_dump(mode="json")),
        replicas=replicas,
    )


@router.post(
    "",
    status_code=201,
    response_model=TransferPublic,
    responses={
        200: {"model": TransferPublic, "description": "The transfer this submission id made"},
        409: {"description": "The submission id was used for another transfer"},
    },
)
async def create_transfer(
    body: TransferCreate, state: StateDep, caller: Writer, request: Request, response: Response
) -> TransferPublic:
    transfer, created = await submit_body(state, caller, body)
    note_target(request, transfer.id)
    if not created:
        response.status_code = 200
    runs = await state.store.latest_runs([transfer])
    return present(transfer, runs.get(transfer.id))


async def submit_body(
    state: ServerState, caller: Principal, body: TransferCreate
) -> tuple[Transfer, bool]:
    """Submit what ``body`` asks for (the API's and the dashboard form's one way in) and
    announce a new transfer to the event streams; whether it is new."""
    transfer, created = await submit_transfer(
        state.store,
        state.wakeups,
        caller,
        spec_from(body),
        schedule=body.schedule.to_domain(state.clock()),
        requested_schedule=body.schedule.model_dump(mode="json", exclude_unset=True),
        submission_id=body.submission_id,
        scope=body.scope,
        clock=state.clock,
        protected=state.protected,
        endpoints=state.endpoints,
    )
    if created:
        state.wakeups.events.publish(
            TransferChanged(transfer=transfer.id, status=transfer.status.value)
        )
    return transfer, created


async def rerun(state: ServerState, caller: Principal, transfer_id: str) -> Transfer:
    """Submit ``transfer_id``'s spec again, to run now, through the one way in (the caller
    must be allowed its scope and storages as for any submission); the new transfer."""
    transfer = visible_to(caller, await state.store.get_transfer(transfer_id))
    created, _ = await submit_body(state, caller, resubmission(transfer))
    return created


def resubmission(transfer: Transfer) -> TransferCreate:
    """What submits ``transfer`` again: its kind, sources, destination, options (labels and
    all) and scope, with no schedule (now) and no submission id (each re-run is new). A push
    or pull has the client's machine at one end: it is pushed or pulled again, not re-run."""
    if CLIENT_STORAGE in transfer.spec.storages():
        raise Conflict(
            f"transfer {transfer.id} is a push or pull: the client's machine is one end of it,"
            " so push or pull again instead of re-running it"
        )
    spec = transfer.spec.to_json()
    return TransferCreate.model_validate(
        {
            "kind": spec["kind"],
            "sources": spec["sources"],
            "destination": spec["destination"],
            "options": spec["options"],
            "scope": transfer.scope,
        }
    )


@router.post(
    "/{transfer_id}/rerun",
    status_code=201,
    response_model=TransferPublic,
    responses={409: {"description": "A push or pull (not re-run), or a short id is ambiguous"}},
)
async def rerun_transfer(
    transfer_id: str, state: StateDep, caller: Writer, request: Request
) -> TransferPublic:
    """A new transfer with this one's spec, scope and labels, to run now."""
    transfer_id = await resolve_id(state, caller, transfer_id)
    transfer = await rerun(state, caller, transfer_id)
    note_target(request, transfer.id)
    return present(transfer, None, caller)


@router.get("", response_model=TransferList)
async def list_transfers(
    state: StateDep,
    caller: Reader,
    status: TransferStatus | None = None,
    kind: TransferKind | None = None,
    submitter: Annotated[str | None, Query(max_length=128)] = None,
    scope: Annotated[str | None, Query(max_length=64)] = None,
    schedule: Annotated[ScheduleKind | None, Query(description="schedule kind")] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=SEARCH_MAX, description=SEARCH)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> TransferList:
    where = TransferFilter(
        status=status,
        kind=kind.value if kind else None,
        submitter=submitter,
        scope=scope,
        schedule_kind=schedule.value if schedule else None,
        label=label,
        scopes=None if caller.role is Role.ADMINISTRATOR else caller.scopes,
        text=(q or "").strip() or None,
    )
    page = await state.store.list_transfers(where=where, limit=limit, cursor=cursor)
    return TransferList(
        items=[present(tr, page.runs.get(tr.id), caller) for tr in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{transfer_id}", response_model=TransferPublic, responses=AMBIGUOUS)
async def get_transfer(transfer_id: str, state: StateDep, caller: Reader) -> TransferPublic:
    transfer_id = await resolve_id(state, caller, transfer_id)
    seen = await state.store.get_transfer_with_run(transfer_id)
    visible_to(caller, seen.transfer)
    run = seen.run
    public = present(seen.transfer, run, caller)
    if run is not None and run.status is RunStatus.ONGOING:
        moving = run_progress(run, seen.active_bytes, state.clock())
        public.progress = ProgressPublic(**asdict(moving))
    return public


@router.post(
    "/{transfer_id}/cancel",
    response_model=CancelResult,
    responses={409: {"description": "The transfer has finished, or a short id is ambiguous"}},
)
async def cancel_transfer(transfer_id: str, state: StateDep, caller: Writer) -> CancelResult:
    transfer_id = await resolve_id(state, caller, transfer_id)
    visible_to(caller, await state.store.get_transfer(transfer_id))
    outcome = await state.store.cancel_transfer(transfer_id)
    state.wakeups.objects_ended()
    state.wakeups.events.publish(
        TransferChanged(transfer=transfer_id, status=outcome.transfer.status.value)
    )
    stopping = outcome.stopping_tasks
    return CancelResult(
        id=transfer_id,
        status=outcome.transfer.status.value,
        outcome=f"canceled; {stopping} active object{'s are' if stopping != 1 else ' is'}"
        " being stopped"
        if stopping
        else "canceled",
        canceled_objects=outcome.canceled_tasks,
        stopping_objects=stopping,
    )


@router.get("/{transfer_id}/runs", response_model=list[RunPublic], responses=AMBIGUOUS)
async def list_runs(
    transfer_id: str,
    state: StateDep,
    caller: Reader,
    after: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="only runs numbered above this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[RunPublic]:
    transfer_id = await resolve_id(state, caller, transfer_id)
    visible_to(caller, await state.store.get_transfer(transfer_id))  # 404: unknown, or not its
    return [
        present_run(run)
        for run in await state.store.list_runs(transfer_id, after=after, limit=limit)
    ]


def present_run(run: Run) -> RunPublic:
    c = run.counts
    return RunPublic(
        number=run.number,
        status=run.status.value,
        due_at=run.due_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        objects=ObjectCounts(
            total=c.total,
            done=c.done,
            failed=c.failed,
            skipped=c.skipped,
            canceled=c.canceled,
            filtered=c.filtered,
        ),
        bytes=c.bytes,
        occurrences=run.occurrences,
        skipped_occurrences=run.skipped_occurrences,
        error=run.error,
        deletion=None
        if run.deletion is None
        else DeletionPublic(
            state=run.deletion,
            note=run.deletion_note,
            deleted=c.deleted,
            bytes=c.deleted_bytes,
        ),
    )


@router.get("/{transfer_id}/outcomes", response_model=Outcomes, responses=AMBIGUOUS)
async def get_outcomes(
    transfer_id: str,
    state: StateDep,
    caller: Reader,
    run: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    cursor: Annotated[
        int,
        Query(ge=0, le=INT64_MAX, description="objects numbered above this: a page's last `id`"),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    status: Annotated[TaskState | None, Query(description="only objects in this state")] = None,
) -> Outcomes | Response:
    """The objects of a run (the latest by default) in number order, each with its state and
    attempts. An object's `id` is its number within the run, given in listing order; in a run
    made before objects were numbered (schema revision 0015) it is its task's id. An object
    that travels in a chunk and was not reported yet shows its chunk's state: QUEUED with 0
    attempts has not started, ACTIVE names the agent copying it."""
    transfer_id = await resolve_id(state, caller, transfer_id)
    transfer = visible_to(caller, await state.store.get_transfer(transfer_id))
    if transfer.runs == 0:
        return Outcomes(
            transfer=transfer.id,
            run=None,
            status=transfer.status.value,
            started=False,
            message=NOT_STARTED,
            objects=[],
        )
    number = run or transfer.runs
    run_row = await state.store.get_run(transfer.id, number)
    rows = await state.store.outcomes(transfer.id, number, after=cursor, limit=limit, state=status)
    body = outcomes_page(transfer.id, number, run_row.status.value, rows, limit)
    return Response(body, media_type="application/json")
