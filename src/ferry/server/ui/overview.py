"""The dashboard's overview at ``/``: per link (source site → destination site) what is queued
and active now, what ended in the last hour, its success rate, throughput, commonest error and
a health badge; totals; the next scheduled runs. Its figures refresh themselves (htmx polling
a fragment), read through the store's cheap aggregates, never a scan of the tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from ferry.server.deps import StateDep
from ferry.server.ui.render import page
from ferry.server.ui.sessions import ViewerDep
from ferry.store.abc import LinkActivity

router = APIRouter()

REFRESH_S = 3
WINDOW = timedelta(hours=1)
NEXT_RUNS = 10
MIN_SPAN_S = 60.0  # a rate over a few seconds of a burst says little
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class LinkFigures:
    """A link's activity with what the page derives from it."""

    activity: LinkActivity
    success_rate: float | None  # of the objects that ended in the window; None: none did
    mib_per_s: float
    health: str


def figures_of(activity: LinkActivity, now: datetime) -> LinkFigures:
    ended = activity.done + activity.failed
    rate = activity.done / ended if ended else None
    span = MIN_SPAN_S
    if activity.first_done_at is not None:
        span = max(MIN_SPAN_S, (now - activity.first_done_at).total_seconds())
    return LinkFigures(activity, rate, activity.bytes / span / MIB, health_of(activity, rate))


def health_of(activity: LinkActivity, rate: float | None) -> str:
    """FAILING under half its objects moved; DEGRADED under 90 %; STALLED: work queued and
    nothing moving nor moved in the window; IDLE: nothing at all."""
    if rate is not None and rate < 0.5:
        return "FAILING"
    if rate is not None and rate < 0.9:
        return "DEGRADED"
    if activity.queued and not activity.active and not activity.done:
        return "STALLED"
    if activity.active or activity.done:
        return "OK"
    return "IDLE"


def totals_of(links: list[LinkFigures], now: datetime) -> LinkFigures:
    starts = [f.activity.first_done_at for f in links if f.activity.first_done_at is not None]
    total = LinkActivity(
        "all",
        "all",
        queued=sum(f.activity.queued for f in links),
        active=sum(f.activity.active for f in links),
        done=sum(f.activity.done for f in links),
        failed=sum(f.activity.failed for f in links),
        bytes=sum(f.activity.bytes for f in links),
        first_done_at=min(starts, default=None),
    )
    return figures_of(total, now)


@router.get("/")
async def overview_page(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _overview(request, state, viewer, "overview.html")


@router.get("/overview/figures")
async def overview_figures(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _overview(request, state, viewer, "overview_figures.html")


async def _overview(request: Request, state: StateDep, viewer: ViewerDep, name: str) -> Response:
    now = state.clock()
    activity = await state.store.link_activity(now - WINDOW, viewer.scopes)
    links = [figures_of(a, now) for a in activity]
    return page(
        request,
        name,
        viewer,
        links=links,
        totals=totals_of(links, now),
        next_runs=await state.store.next_runs(viewer.scopes, NEXT_RUNS),
        now=now,
        refresh_s=REFRESH_S,
    )
