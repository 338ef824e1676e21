"""What the server exposes to Prometheus at ``/metrics``, in a registry of its own per app.

Counters and histograms move where the work happens (results applied, leases served, runs
started, requests answered); what the store holds now (transfers by status, queued and active
objects, agents by state) is counted when scraped, with the read bounded in time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferry.domain.states import TaskState
from ferry.store.abc import ChunkTally, LifecycleStore, StoreGauges, TaskChange

log = logging.getLogger("ferry.api")

API_PREFIX = "/api/v1"
STORE_READ_S = 2.0  # a scrape waits this long for the store's counts, then goes without them
OBJECT_LABELS = ("scope", "source_site", "destination_site")
# A failed attempt: the task FAILED for good, or WAITING for its next try.
_FAILED = (TaskState.FAILED, TaskState.WAITING)
_LOCK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0)


class StoreCollector(Collector):
    """The store's gauges, from the counts the scrape read last (``refresh``)."""

    def __init__(self, store: LifecycleStore) -> None:
        self.store = store
        self.latest: StoreGauges | None = None
        self._reading: asyncio.Task[StoreGauges] | None = None

    async def refresh(self, timeout: float = STORE_READ_S) -> None:
        """Read the counts, waiting at most ``timeout``: a slow read goes on (one at a time)
        and serves a later scrape, and this one shows no gauges of the store."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self.store.gauges())
        try:
            self.latest = await asyncio.wait_for(asyncio.shield(self._reading), timeout)
        except Exception as exc:  # a timeout, or a database that cannot answer
            log.warning("metrics: the store's counts were not read: %s", exc or type(exc))
            self.latest = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ferry_store_counts_up", "1 when this scrape read the store's counts, else 0"
        )
        up.add_metric([], 0 if self.latest is None else 1)
        yield up
        depth = GaugeMetricFamily(
            "ferry_store_write_queue_depth", "Writes waiting for the store's single writer"
        )
        depth.add_metric([], self.store.write_queue_depth)
        yield depth
        if self.latest is not None:
            yield from _gauges_of(self.latest)


def _gauges_of(counts: StoreGauges) -> Iterator[Metric]:
    yield _family("ferry_transfers", "Transfers by status", ["status"], counts.transfers)
    yield _family("ferry_queued_objects", "QUEUED objects by scope", ["scope"], counts.queued)
    yield _family(
        "ferry_active_tasks",
        "ACTIVE tasks by channel (source site, destination site)",
        ["source_site", "destination_site"],
        counts.active,
    )
    yield _family("ferry_agents", "Agents by state", ["state"], counts.agents)


def _family(name: str, doc: str, labels: list[str], values: dict[Any, int]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


class Metrics:
    """The metrics of one server, in a registry of its own (tests build many apps)."""

    def __init__(self, store: LifecycleStore) -> None:
        self.registry = registry = CollectorRegistry()
        self.store_counts = StoreCollector(store)
        registry.register(self.store_counts)
        self.objects_moved = Counter(
            "ferry_objects_moved", "Objects copied", OBJECT_LABELS, registry=registry
        )
        self.bytes_moved = Counter(
            "ferry_bytes_moved", "Bytes of the objects copied", OBJECT_LABELS, registry=registry
        )
        self.objects_failed = Counter(
            "ferry_objects_failed", "Objects failed for good", OBJECT_LABELS, registry=registry
        )
        self.attempts_failed = Counter(
            "ferry_attempts_failed", "Attempts that failed", OBJECT_LABELS, registry=registry
        )
        self.bytes_failed = Counter(
            "ferry_bytes_failed",
            "Bytes moved by attempts that failed",
            OBJECT_LABELS,
            registry=registry,
        )
        self.due_lag = Histogram(
            "ferry_due_lag_seconds",
            "How late runs started after they were due",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.lease_latency = Histogram(
            "ferry_lease_latency_seconds",
            "From a lease request's arrival to its answer, for leases that got tasks",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.lease_lock = Histogram(
            "ferry_lease_lock_seconds",
            "How long a lease that got tasks held the lease lock every server of the database"
            " shares, from taking it to its commit as the store saw it",
            buckets=_LOCK_BUCKETS,
            registry=registry,
        )
        self.request_duration = Histogram(
            "ferry_http_request_duration_seconds",
            "API requests by method, route template and status code",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def count_results(self, changes: Iterable[TaskChange]) -> None:
        for change in changes:
            link = (change.scope, change.source_site, change.destination_site)
            if change.state is TaskState.DONE:
                self.objects_moved.labels(*link).inc()
                self.bytes_moved.labels(*link).inc(change.bytes)
            elif change.state in _FAILED:
                self.attempts_failed.labels(*link).inc()
                self.bytes_failed.labels(*link).inc(change.bytes)
                if change.state is TaskState.FAILED:
                    self.objects_failed.labels(*link).inc()

    def count_chunk_results(self, tallies: Iterable[ChunkTally]) -> None:
        """The objects of carriers' reports, counted as ``count_results`` counts tasks."""
        for tally in tallies:
            change = tally.change
            link = (change.scope, change.source_site, change.destination_site)
            if tally.done:
                self.objects_moved.labels(*link).inc(tally.done)
                self.bytes_moved.labels(*link).inc(tally.bytes)
            if tally.failed or tally.retried:
                self.attempts_failed.labels(*link).inc(tally.failed + tally.retried)
            if tally.failed:
                self.objects_failed.labels(*link).inc(tally.failed)

    async def exposition(self) -> bytes:
        """The text format of every metric, the store's counts read anew."""
        await self.store_counts.refresh()
        return generate_latest(self.registry)


class RequestTimer:
    """Times every HTTP request into ``Metrics.request_duration``, labelled by the template of
    the route that answered (``/api/v1/transfers/{transfer_id}``), never by the raw path: the
    number of series stays that of the routes."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            elapsed = time.perf_counter() - started
            labels = (scope["method"], route_template(scope), str(status))
            self.metrics.request_duration.labels(*labels).observe(elapsed)


def route_template(scope: Scope) -> str:
    """The template of the route that answered, whole; ``unmatched`` when none did."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return "unmatched"
    # FastAPI gives it relative to the router that included it (``/users``); older releases
    # gave it whole.
    within_api = scope["path"].startswith(API_PREFIX + "/")
    if within_api and not path.startswith(API_PREFIX + "/"):
        return API_PREFIX + path
    return path
