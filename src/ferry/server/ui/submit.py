"""The dashboard's new-transfer form, submitted through the API's own path (``submit_transfer``
with the API's ``TransferCreate`` checks)."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from ferry.api.schemas import ScheduleIn, TransferCreate
from ferry.domain.options import Checksum, Overwrite
from ferry.domain.schedules import ScheduleKind, Unit, upcoming
from ferry.domain.transfers import Role, TransferKind
from ferry.errors import AuthError, Forbidden, InvalidRequest, InvalidSchedule, NotFound
from ferry.scheduler.submission import DEFAULT_SCOPE
from ferry.server.deps import StateDep
from ferry.server.routes.transfers import submit_body
from ferry.server.ui.audit import record_act
from ferry.server.ui.render import explain, page
from ferry.server.ui.sessions import PostedForm, Viewer, ViewerDep

router = APIRouter()

PREVIEWED = 10


@router.get("/transfers/new")
async def new_transfer_form(request: Request, viewer: ViewerDep) -> Response:
    return _form_page(request, viewer, {}, error=None, status_code=200)


@router.get("/transfers/new/preview")
async def schedule_preview(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    """The next occurrences of the form's schedule, computed as the scheduler will (the
    function behind ``ferry schedule preview``), for the form to show before it is sent."""
    form = dict(request.query_params.items())
    now = state.clock()
    try:
        schedule = ScheduleIn.model_validate(body_of(form)["schedule"]).to_domain(now)
        times = list(itertools.islice(upcoming(schedule.anchored(now), now), PREVIEWED))
        error = None if times else "no occurrence left (until has passed or count is spent)"
    except ValidationError as exc:
        times, error = [], explain(exc)
    except (InvalidRequest, InvalidSchedule) as exc:
        times, error = [], str(exc)
    return page(request, "preview.html", viewer, times=times, error=error)


@router.post("/transfers/new")
async def new_transfer(
    request: Request, state: StateDep, viewer: ViewerDep, form: PostedForm
) -> Response:
    if not viewer.may_write:
        raise Forbidden(Role.WRITE.value)
    try:
        body = TransferCreate.model_validate(body_of(form))
        transfer, _ = await submit_body(state, viewer.principal, body)
    except ValidationError as exc:
        return _form_page(request, viewer, form, explain(exc), status_code=422)
    except (InvalidRequest, InvalidSchedule, NotFound, AuthError) as exc:
        return _form_page(request, viewer, form, str(exc), status_code=422)
    await record_act(request, state, viewer, "submit", 303, transfer.id)
    return RedirectResponse(f"/transfers/{transfer.id}", status_code=303)


def body_of(form: dict[str, str]) -> dict[str, Any]:
    """The API's request body from the form's fields: one source a line, and the schedule's
    fields that its kind takes."""
    kind = form.get("schedule", "direct")
    schedule: dict[str, Any] = {"kind": kind}
    if kind == "at":
        schedule["at"] = form.get("at", "").strip()
    elif kind == "every":
        interval = form.get("interval", "1").strip()
        schedule["unit"] = form.get("unit", "")
        schedule["interval"] = int(interval) if interval.isdigit() else interval
    elif kind == "cron":
        schedule["expr"] = form.get("expr", "").strip()
    if kind != "direct" and form.get("timezone", "").strip():
        schedule["timezone"] = form["timezone"].strip()
    return {
        "kind": form.get("kind", "file"),
        "sources": [line.strip() for line in form.get("sources", "").splitlines() if line.strip()],
        "destination": form.get("destination", "").strip(),
        "scope": form.get("scope", "").strip() or DEFAULT_SCOPE,
        "schedule": schedule,
        "options": options_of(form),
    }


def options_of(form: dict[str, str]) -> dict[str, Any]:
    """The API's ``options`` from the form's fields; an empty field keeps the API's default,
    and labels are separated by commas or spaces."""
    options: dict[str, Any] = {}
    for name in ("checksum", "overwrite"):
        if value := form.get(name, "").strip():
            options[name] = value
    for name in ("retries", "priority"):
        if value := form.get(name, "").strip():
            options[name] = int(value) if value.isdigit() else value
    if labels := form.get("labels", "").replace(",", " ").split():
        options["labels"] = labels
    return options


def _form_page(
    request: Request, viewer: Viewer, form: dict[str, str], error: str | None, status_code: int
) -> Response:
    return page(
        request,
        "new.html",
        viewer,
        status_code,
        form=form,
        error=error,
        kinds=[k.value for k in TransferKind],
        schedules=[k.value for k in ScheduleKind],
        units=[u.value for u in Unit],
        checksums=[c.value for c in Checksum],
        overwrites=[o.value for o in Overwrite],
        scopes=viewer.principal.scopes or (DEFAULT_SCOPE,),
    )
