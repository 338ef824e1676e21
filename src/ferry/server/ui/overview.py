"""The dashboard's overview at ``/``: per link (source site → destination site) what is queued
and active now, what ended in the last hour, its success rate, throughput, commonest error and
a health badge; totals; a chart of the bytes moved in each minute of the last hour; the next
scheduled runs. Its figures refresh themselves (htmx polling a fragment), read through the
store's cheap aggregates, never a scan of the tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import Response

from ferry.server.deps import StateDep
from ferry.server.ui.chart import ThroughputChart, throughput_chart
from ferry.server.ui.render import page
from ferry.server.ui.sessions import ViewerDep
from ferry.store.abc import LinkActivity, ScheduledRun

router = APIRouter()

REFRESH_S = 3
WINDOW = timedelta(hours=1)
NEXT_RUNS = 10
MIN_SPAN_S = 60.0  # a rate over a few seconds of a burst says little
MIB = 1 << 20
T = TypeVar("T")
FRESH_S = 2.0  # figures this young are shown again: the page itself refreshes every 3 s


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


Reading = tuple[datetime, list[LinkActivity], list[ScheduledRun], Markup]


class SharedReading(Generic[T]):
    """The overview's store reading, shared by every viewer of the same scopes: one reads it
    while the others wait for that reading, and it serves them for ``FRESH_S`` seconds. A
    dozen people watching the overview cost the database one reading every two seconds, not
    a dozen."""

    def __init__(self, fresh_s: float = FRESH_S) -> None:
        self.fresh_s = fresh_s
        self._kept: dict[tuple[str, ...] | None, tuple[float, T]] = {}
        self._locks: dict[tuple[str, ...] | None, asyncio.Lock] = {}

    async def get(self, key: tuple[str, ...] | None, read: Callable[[], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            kept = self._kept.get(key)
            if kept is not None and time.monotonic() - kept[0] < self.fresh_s:
                return kept[1]
            value = await read()
            self._kept[key] = (time.monotonic(), value)
            return value


def drawn(request: Request, chart: ThroughputChart) -> Markup:
    """The chart's SVG, drawn once per reading: the same for every viewer who shares it."""
    templates: Jinja2Templates = request.app.state.ui_templates
    svg = templates.env.get_template("chart.html").render(chart=chart)  # autoescaped
    return Markup(svg)  # noqa: S704


@router.get("/")
async def overview_page(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _overview(request, state, viewer, "overview.html")


@router.get("/overview/figures")
async def overview_figures(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _overview(request, state, viewer, "overview_figures.html")


async def _overview(request: Request, state: StateDep, viewer: ViewerDep, name: str) -> Response:
    async def read() -> Reading:
        now = state.clock()
        activity = await state.store.link_activity(now - WINDOW, viewer.scopes)
        next_runs = await state.store.next_runs(viewer.scopes, NEXT_RUNS)
        return now, activity, next_runs, drawn(request, throughput_chart(activity, now - WINDOW))

    shared: SharedReading[Reading] = request.app.state.__dict__.setdefault(
        "overview_reading", SharedReading()
    )
    scopes = None if viewer.scopes is None else tuple(sorted(viewer.scopes))
    now, activity, next_runs, chart = await shared.get(scopes, read)
    links = [figures_of(a, now) for a in activity]
    return page(
        request,
        name,
        viewer,
        links=links,
        totals=totals_of(links, now),
        next_runs=next_runs,
        chart=chart,
        now=now,
        refresh_s=REFRESH_S,
    )
