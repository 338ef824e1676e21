"""Channels and scopes: the dispatch's limits and shares (FTS channels, VO shares)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response

from ferry.api.schemas import ChannelIn, ChannelPublic, ScopeIn, ScopePublic
from ferry.domain.channels import Channel, check_site_name
from ferry.domain.timetable import Timetable
from ferry.domain.transfers import Scope
from ferry.server.deps import Administrator, Reader, StateDep

router = APIRouter(tags=["channels"])

# One Path() each: a single instance shared by both parameters was bound to the first one's
# name, so that both read the source's site (siteA/siteC was stored as siteA→siteA).
SourceSite = Annotated[str, Path(max_length=64, description="the source's site, or * for any")]
DestinationSite = Annotated[
    str, Path(max_length=64, description="the destination's site, or * for any")
]
ScopeName = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")


def _present(channel: Channel, now: datetime, active: int = 0) -> ChannelPublic:
    change = channel.seconds_to_change(now)
    return ChannelPublic(
        **channel.to_json(),
        active=active,
        bandwidth_now=channel.bandwidth_at(now),
        next_change=None if change is None else now + timedelta(seconds=change),
    )


def channel_of(source_site: str, destination_site: str, body: ChannelIn) -> Channel:
    """The channel ``body`` sets; raises ``InvalidRequest`` for bounds that do not hold, or a
    timetable that does not read."""
    text = body.bandwidth_timetable
    timetable = Timetable.parse(text) if text is not None else None
    if body.optimize:
        return Channel.optimized(
            source_site, destination_site, min_active=body.min_active,
            max_active=body.max_active, bandwidth=body.bandwidth, state=body.state,
            timetable=timetable, timezone=body.timezone,
        )  # fmt: skip
    return Channel(
        source_site, destination_site, body.max_active, body.bandwidth, body.state,
        timetable=timetable, timezone=body.timezone, min_active=body.min_active,
    )  # fmt: skip


@router.get("/channels", response_model=list[ChannelPublic])
async def list_channels(state: StateDep, caller: Reader) -> list[ChannelPublic]:
    channels = await state.store.list_channels()
    active = await state.store.active_by_channel()
    now = state.clock()
    return [_present(c, now, active.get(c.key, 0)) for c in channels]


@router.put("/channels/{source_site}/{destination_site}", response_model=ChannelPublic)
async def put_channel(
    body: ChannelIn,
    state: StateDep,
    caller: Administrator,
    source_site: SourceSite,
    destination_site: DestinationSite,
) -> ChannelPublic:
    """Create or replace the channel ``SOURCE → DESTINATION``. ``drain`` lets active tasks
    finish and starts no new ones; ``stopped`` also stops the active ones (back to QUEUED).
    ``optimize``: the link optimizer moves its limit from ``min_active`` up to
    ``max_active``; setting the channel again starts its search again."""
    for site in (source_site, destination_site):
        check_site_name(site, wildcard=True)
    channel = channel_of(source_site, destination_site, body)
    await state.store.put_channel(channel)
    state.wakeups.work_queued()  # more room, perhaps
    return _present(channel, state.clock())


@router.delete("/channels/{source_site}/{destination_site}", status_code=204)
async def delete_channel(
    state: StateDep,
    caller: Administrator,
    source_site: SourceSite,
    destination_site: DestinationSite,
) -> Response:
    await state.store.delete_channel(source_site, destination_site)
    state.wakeups.work_queued()
    return Response(status_code=204)


@router.get("/scopes", response_model=list[ScopePublic])
async def list_scopes(state: StateDep, caller: Reader) -> list[ScopePublic]:
    return [ScopePublic(name=s.name, weight=s.weight) for s in await state.store.list_scopes()]


@router.put("/scopes/{name}", response_model=ScopePublic)
async def put_scope(
    body: ScopeIn, state: StateDep, caller: Administrator, name: str = ScopeName
) -> ScopePublic:
    scope = await state.store.put_scope(Scope(name, body.weight))
    return ScopePublic(name=scope.name, weight=scope.weight)
