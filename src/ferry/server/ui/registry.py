"""The dashboard's registry: storages (with the grants the viewer may see), channels (with the
tasks active in each now) and scopes. Administrators set and remove channels and set scopes'
weights here, through the store calls the API's routes make, each act in the audit trail."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from ferry.api.schemas import ChannelIn, ScopeIn
from ferry.domain.channels import Channel, ChannelState, check_site_name
from ferry.domain.transfers import Role, Scope
from ferry.errors import Forbidden, InvalidRequest, NotFound
from ferry.server.deps import StateDep
from ferry.server.routes.channels import channel_of
from ferry.server.routes.storages import grants_seen_by
from ferry.server.state import ServerState
from ferry.server.ui.audit import record_act
from ferry.server.ui.render import explain, page
from ferry.server.ui.sessions import PostedForm, Viewer, ViewerDep

router = APIRouter()

REFRESH_S = 3
SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@router.get("/storages")
async def storages_page(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    """The storages the viewer's scopes are granted (all for an administrator), as
    ``GET /api/v1/storages`` lists them, with their last recorded health."""
    grants = await grants_seen_by(state, viewer.principal)
    granted = {g.storage for g in grants}
    everything = viewer.may_administer
    storages = [s for s in await state.store.list_storages() if everything or s.name in granted]
    return page(
        request,
        "storages.html",
        viewer,
        storages=sorted(storages, key=lambda s: s.name),
        grants={s.name: [g for g in grants if g.storage == s.name] for s in storages},
    )


@router.get("/channels")
async def channels_page(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _channels_page(request, state, viewer, error=None, status_code=200)


@router.get("/channels/active")
async def channels_active(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    """Each channel's tasks active now, as out-of-band cells: the page polls this and htmx
    swaps those cells alone, leaving an administrator's half-typed edits in place."""
    channels = await state.store.list_channels()
    active = await state.store.active_by_channel()
    return page(request, "channels_active.html", viewer, channels=channels, active=active)


def active_cell(channel: Channel) -> str:
    """The id of a channel's active-count cell (hex: site names may hold '*', '.' or ':')."""
    return "active-" + f"{channel.source_site}\n{channel.destination_site}".encode().hex()


@router.post("/channels")
async def set_channel(
    request: Request, state: StateDep, viewer: ViewerDep, form: PostedForm
) -> Response:
    """Create or replace a channel, as ``PUT /api/v1/channels/{source}/{destination}``."""
    target = _channel_name(form)
    await _only_administrators(request, state, viewer, "channel set", target)
    try:
        body = ChannelIn.model_validate(_channel_body(form))
        for site in (form.get("source_site", ""), form.get("destination_site", "")):
            check_site_name(site, wildcard=True)
        channel = channel_of(form["source_site"], form["destination_site"], body)
    except ValidationError as exc:
        return await _channels_page(request, state, viewer, explain(exc), status_code=422)
    except InvalidRequest as exc:
        return await _channels_page(request, state, viewer, str(exc), status_code=422)
    await state.store.put_channel(channel)
    state.wakeups.work_queued()  # more room, perhaps
    await record_act(request, state, viewer, "channel set", 303, target)
    return RedirectResponse("/channels", status_code=303)


@router.post("/channels/remove")
async def remove_channel(
    request: Request, state: StateDep, viewer: ViewerDep, form: PostedForm
) -> Response:
    """Remove a channel, as ``DELETE /api/v1/channels/{source}/{destination}``."""
    target = _channel_name(form)
    await _only_administrators(request, state, viewer, "channel remove", target)
    try:
        await state.store.delete_channel(
            form.get("source_site", ""), form.get("destination_site", "")
        )
    except NotFound as exc:
        return await _channels_page(request, state, viewer, str(exc), status_code=404)
    state.wakeups.work_queued()
    await record_act(request, state, viewer, "channel remove", 303, target)
    return RedirectResponse("/channels", status_code=303)


@router.get("/scopes")
async def scopes_page(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _scopes_page(request, state, viewer, error=None, status_code=200)


@router.post("/scopes")
async def set_scope(
    request: Request, state: StateDep, viewer: ViewerDep, form: PostedForm
) -> Response:
    """Create a scope or set its weight, as ``PUT /api/v1/scopes/{name}``."""
    name = form.get("name", "").strip()
    await _only_administrators(request, state, viewer, "scope set", name[:64])
    if not SCOPE_NAME.match(name):
        error = f"{name!r} is no scope name: 1 to 64 of A-Z a-z 0-9 _ . -"
        return await _scopes_page(request, state, viewer, error, status_code=422)
    try:
        body = ScopeIn.model_validate({"weight": _number(form.get("weight", ""))})
    except ValidationError as exc:
        return await _scopes_page(request, state, viewer, explain(exc), status_code=422)
    await state.store.put_scope(Scope(name, body.weight))
    await record_act(request, state, viewer, "scope set", 303, name)
    return RedirectResponse("/scopes", status_code=303)


async def _only_administrators(
    request: Request, state: ServerState, viewer: Viewer, act: str, target: str
) -> None:
    if not viewer.may_administer:
        await record_act(request, state, viewer, act, 403, target)
        raise Forbidden(Role.ADMINISTRATOR.value)


def _channel_name(form: dict[str, str]) -> str:
    return f"{form.get('source_site', '')[:64]}→{form.get('destination_site', '')[:64]}"


def _channel_body(form: dict[str, str]) -> dict[str, Any]:
    """The API's ``ChannelIn`` from the form: an empty field is no limit."""
    body: dict[str, Any] = {"state": form.get("state", "active"), "optimize": "optimize" in form}
    for field in ("max_active", "bandwidth", "min_active"):
        if value := form.get(field, "").strip():
            body[field] = _number(value)
    for field in ("bandwidth_timetable", "timezone"):
        if value := form.get(field, "").strip():
            body[field] = value
    return body


def _number(value: str) -> int | str:
    """An integer when it reads as one; else the text, for the schema to explain."""
    return int(value) if value.strip().isdigit() else value


async def _channels_page(
    request: Request, state: ServerState, viewer: Viewer, error: str | None, status_code: int
) -> Response:
    channels = await state.store.list_channels()
    return page(
        request,
        "channels.html",
        viewer,
        status_code,
        channels=sorted(channels, key=lambda c: c.key),
        active=await state.store.active_by_channel(),
        states=[s.value for s in ChannelState],
        error=error,
        refresh_s=REFRESH_S,
    )


async def _scopes_page(
    request: Request, state: ServerState, viewer: Viewer, error: str | None, status_code: int
) -> Response:
    scopes = await state.store.list_scopes()
    return page(
        request,
        "scopes.html",
        viewer,
        status_code,
        scopes=sorted(scopes, key=lambda s: s.name),
        error=error,
    )
