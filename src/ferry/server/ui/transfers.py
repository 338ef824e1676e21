"""The dashboard's transfers: a filtered, paged list; a transfer's page (spec, schedule, runs,
a run's objects, a live progress bar); cancel and re-run."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.responses import Response

from ferry.domain.events import TransferChanged
from ferry.domain.schedules import Schedule, ScheduleKind, occurrences
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import Role, run_progress
from ferry.errors import FerryError, Forbidden
from ferry.server.deps import StateDep
from ferry.server.problems import status_of
from ferry.server.routes import events
from ferry.server.routes.transfers import SEARCH_MAX, rerun, visible_to
from ferry.server.ui.audit import record_act
from ferry.server.ui.render import page
from ferry.server.ui.sessions import PostedForm, ViewerDep
from ferry.store.abc import TransferFilter
from ferry.store.sql_passive import CLIENT_STORAGE

router = APIRouter()

PAGE_SIZE = 25
OBJECTS_PAGE = 100
NEXT_OCCURRENCES = 10
SCHEDULE_KINDS = [k.value for k in ScheduleKind]
FINAL = frozenset(s.value for s in TransferStatus) - {"STANDBY", "ONGOING"}


@router.get("/transfers")
async def transfer_list(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    status: Annotated[str, Query(max_length=32)] = "",
    scope: Annotated[str, Query(max_length=64)] = "",
    label: Annotated[str, Query(max_length=64)] = "",
    schedule: Annotated[str, Query(max_length=32)] = "",
    q: Annotated[str, Query(max_length=SEARCH_MAX)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    chosen = TransferStatus(status) if status in TransferStatus.__members__ else None
    kind = schedule if schedule in SCHEDULE_KINDS else ""
    where = TransferFilter(
        status=chosen,
        scope=scope or None,
        schedule_kind=kind or None,
        label=label.strip() or None,
        scopes=viewer.scopes,
        text=q.strip() or None,
    )
    found = await state.store.list_transfers(where=where, limit=PAGE_SIZE, cursor=cursor or None)
    return page(
        request,
        "transfers.html",
        viewer,
        transfers=found.items,
        runs=found.runs,
        next_cursor=found.next_cursor,
        status=chosen.value if chosen else "",
        scope=scope,
        label=label.strip(),
        schedule=kind,
        q=q.strip(),
        statuses=[s.value for s in TransferStatus],
        schedules=SCHEDULE_KINDS,
    )


@router.get("/transfers/{transfer_id}")
async def transfer_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    transfer_id: str,
    run: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    objects_status: Annotated[str, Query(alias="objects", max_length=16)] = "",
) -> Response:
    wanted = TaskState(objects_status) if objects_status in TaskState.__members__ else None
    seen = await state.store.get_transfer_with_run(transfer_id)
    transfer = visible_to(viewer.principal, seen.transfer)
    runs = await state.store.list_runs(transfer.id, after=0, limit=1000)
    shown = run or transfer.runs
    objects = (
        await state.store.outcomes(
            transfer.id, shown, after=after, limit=OBJECTS_PAGE, state=wanted
        )
        if shown
        else []
    )
    latest = seen.run
    progress = None
    if latest is not None and latest.status is RunStatus.ONGOING:
        progress = run_progress(latest, seen.active_bytes, state.clock())
    spec = transfer.spec.to_json()
    if not viewer.may_write:
        spec["options"].pop("notify", None)  # it may hold a token of its own
    return page(
        request,
        "transfer.html",
        viewer,
        transfer=transfer,
        spec=spec,
        runs=runs,
        latest=latest,
        progress=progress,
        shown=shown,
        objects=objects,
        objects_status=wanted.value if wanted else "",
        task_states=[s.value for s in TaskState],
        next_after=objects[-1].number if len(objects) == OBJECTS_PAGE else None,
        final=transfer.status.value in FINAL,
        rerunnable=CLIENT_STORAGE not in transfer.spec.storages(),
        coming=next_occurrences(transfer.schedule, transfer.next_run_at),
    )


def next_occurrences(schedule: dict[str, Any], next_run_at: datetime | None) -> list[datetime]:
    """The scheduler's own next occurrences of a transfer: its next run, then those of its
    schedule after it (``domain.schedules.occurrences``, which the due loop follows)."""
    if next_run_at is None:
        return []
    parsed = Schedule.from_json(schedule)
    if not parsed.periodic:
        return [next_run_at]
    later = itertools.islice(occurrences(parsed, after=next_run_at), NEXT_OCCURRENCES - 1)
    return [next_run_at, *later]


@router.get("/transfers/{transfer_id}/events")
async def transfer_events(state: StateDep, viewer: ViewerDep, transfer_id: str) -> Response:
    """The API's event stream of one transfer, for the page's progress bar (the browser's
    EventSource sends the session cookie, not a bearer token)."""
    stream: StreamingResponse = await events.events(
        state, viewer.principal, transfer=transfer_id, kind=None
    )
    return stream


@router.post("/transfers/{transfer_id}/cancel")
async def cancel(
    request: Request, state: StateDep, viewer: ViewerDep, form: PostedForm, transfer_id: str
) -> Response:
    if not viewer.may_write:
        await record_act(request, state, viewer, "cancel", 403, transfer_id)
        raise Forbidden(Role.WRITE.value)
    visible_to(viewer.principal, await state.store.get_transfer(transfer_id))
    outcome = await state.store.cancel_transfer(transfer_id)
    state.wakeups.objects_ended()
    state.wakeups.events.publish(
        TransferChanged(transfer=transfer_id, status=outcome.transfer.status.value)
    )
    await record_act(request, state, viewer, "cancel", 303, transfer_id)
    return RedirectResponse(f"/transfers/{transfer_id}", status_code=303)


@router.post("/transfers/{transfer_id}/rerun")
async def rerun_now(
    request: Request, state: StateDep, viewer: ViewerDep, form: PostedForm, transfer_id: str
) -> Response:
    """The re-run button: the API's re-run (``routes.transfers.rerun``), then the new
    transfer's page."""
    if not viewer.may_write:
        await record_act(request, state, viewer, "rerun", 403, transfer_id)
        raise Forbidden(Role.WRITE.value)
    try:
        transfer = await rerun(state, viewer.principal, transfer_id)
    except FerryError as exc:
        await record_act(request, state, viewer, "rerun", status_of(exc), transfer_id)
        raise
    await record_act(request, state, viewer, "rerun", 303, transfer.id)
    return RedirectResponse(f"/transfers/{transfer.id}", status_code=303)
