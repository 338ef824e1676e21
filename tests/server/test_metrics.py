"""/metrics in-process: the families and their labels, counters moved by reports, the bound on
the store's read, the metrics token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_agents import bearer, leased, register
from test_passive_api import create_push, put

from ferry.config import ServerSettings
from ferry.server.app import create_app
from ferry.store.abc import StoreGauges
from ferry.store.sql_base import QueuedLock

LINK = {"scope": "default", "source_site": "local", "destination_site": "local"}
FAMILIES = {
    "ferry_transfers",
    "ferry_queued_objects",
    "ferry_active_tasks",
    "ferry_agents",
    "ferry_store_write_queue_depth",
    "ferry_store_counts_up",
    "ferry_objects_moved",
    "ferry_bytes_moved",
    "ferry_objects_failed",
    "ferry_attempts_failed",
    "ferry_bytes_failed",
    "ferry_due_lag_seconds",
    "ferry_lease_latency_seconds",
    "ferry_lease_lock_seconds",
    "ferry_http_request_duration_seconds",
}


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, labels): value}`` of one scrape."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_every_family_is_exposed_without_a_token_by_default(api) -> None:
    response = await api.anonymous.get("/metrics")
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= FAMILIES
    assert "/metrics" not in (await api.anonymous.get("/api/v1/openapi.json")).json()["paths"]


async def test_reports_move_the_counters_of_their_link_and_scope(api, eventually) -> None:
    agent = await register(api)
    (api.root / "a.txt").write_text("12345")
    (api.root / "b.txt").write_text("12")
    for name in ("a", "b"):
        body = {"sources": [f"local:{name}.txt"], "destination": f"local:o-{name}"}
        created = await api.client.post(
            "/api/v1/transfers", json={**body, "options": {"retries": 0}}
        )
        assert created.status_code == 201
    queued = await eventually(lambda: _queued(api))
    assert value(queued, "ferry_queued_objects", scope="default") == 2
    assert value(queued, "ferry_transfers", status="ONGOING") == 2
    tasks: list[dict] = []
    await eventually(lambda: _lease_into(api, agent, tasks, 2))
    during = await scrape(api.anonymous)
    assert value(during, "ferry_active_tasks", source_site="local", destination_site="local") == 2
    assert (
        value(during, "ferry_agents", state="ALIVE")
        + value(during, "ferry_agents", state="REGISTERED")
        == 1
    )
    assert value(during, "ferry_lease_latency_seconds_count") >= 1
    assert value(during, "ferry_lease_lock_seconds_count") == value(
        during, "ferry_lease_latency_seconds_count"
    )  # each lease that got tasks held the lock once
    assert 0 < value(during, "ferry_lease_lock_seconds_sum") < 5
    assert value(during, "ferry_due_lag_seconds_count") == 2
    done, failed = sorted(tasks, key=lambda task: task["source"])
    report = [
        {"task": done["id"], "lease": done["lease"], "state": "DONE", "bytes": 5},
        {"task": failed["id"], "lease": failed["lease"], "state": "FAILED", "bytes": 2},
    ]
    url = f"/api/v1/agents/{agent['id']}/report"
    assert (await api.anonymous.post(url, json=report, headers=bearer(agent))).status_code == 200
    after = await scrape(api.anonymous)
    assert value(after, "ferry_objects_moved_total", **LINK) == 1
    assert value(after, "ferry_bytes_moved_total", **LINK) == 5
    assert value(after, "ferry_objects_failed_total", **LINK) == 1
    assert value(after, "ferry_attempts_failed_total", **LINK) == 1
    assert value(after, "ferry_bytes_failed_total", **LINK) == 2
    assert value(after, "ferry_active_tasks", source_site="local", destination_site="local") == 0
    # A late copy of the same report is ignored by the store, and by the counters.
    await api.anonymous.post(url, json=report, headers=bearer(agent))
    again = await scrape(api.anonymous)
    assert value(again, "ferry_objects_moved_total", **LINK) == 1
    assert value(again, "ferry_bytes_moved_total", **LINK) == 5


async def test_a_pushed_object_counts_on_the_link_from_the_client(api) -> None:
    created = await create_push(api, [{"name": "x.bin", "size": 3}])
    assert (await put(api, created, "x.bin", b"abc")).json()["state"] == "DONE"
    samples = await scrape(api.anonymous)
    link = {"scope": "default", "source_site": "CLIENT", "destination_site": "local"}
    assert value(samples, "ferry_objects_moved_total", **link) == 1
    assert value(samples, "ferry_bytes_moved_total", **link) == 3


async def _queued(api):
    samples = await scrape(api.anonymous)
    return samples if value(samples, "ferry_queued_objects", scope="default") == 2 else None


async def _lease_into(api, agent: dict, tasks: list, wanted: int) -> bool:
    tasks += await leased(api, agent)
    return len(tasks) >= wanted


async def test_request_durations_are_labelled_by_route_template(api) -> None:
    missing = await api.client.get("/api/v1/transfers/0123456789abcdef")
    assert missing.status_code == 404
    await api.anonymous.get("/no/such/path")
    samples = await scrape(api.anonymous)
    route = "/api/v1/transfers/{transfer_id}"
    assert (
        value(
            samples,
            "ferry_http_request_duration_seconds_count",
            method="GET",
            route=route,
            status="404",
        )
        == 1
    )
    routes = {dict(labels).get("route") for _name, labels in samples}
    assert "unmatched" in routes
    assert not any("0123456789abcdef" in str(route) for route in routes)


async def test_a_slow_store_read_leaves_its_gauges_out_and_does_not_hold_the_scrape(api) -> None:
    release = asyncio.Event()
    reads = 0

    async def slow_gauges() -> StoreGauges:
        nonlocal reads
        reads += 1
        await release.wait()
        return StoreGauges(transfers={"ONGOING": 7}, queued={}, active={}, agents={})

    api.state.store.gauges = slow_gauges
    counts = api.state.metrics.store_counts
    await counts.refresh(timeout=0.05)
    await counts.refresh(timeout=0.05)
    assert reads == 1  # the second scrape waits for the same read, not another
    samples = await _exposed(api)
    assert value(samples, "ferry_store_counts_up") == 0
    assert not any(name == "ferry_transfers" for name, _labels in samples)
    release.set()
    await counts.refresh()
    samples = await _exposed(api)
    assert value(samples, "ferry_store_counts_up") == 1
    assert value(samples, "ferry_transfers", status="ONGOING") == 7


async def _exposed(api):
    from prometheus_client import generate_latest

    text = generate_latest(api.state.metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_write_queue_depth_counts_writers_waiting() -> None:
    lock = QueuedLock()
    entered = asyncio.Event()

    async def write() -> None:
        async with lock:
            entered.set()

    async with lock:
        waiters = [asyncio.create_task(write()) for _ in range(3)]
        while lock.waiting < 3:
            await asyncio.sleep(0)  # each waiter runs up to the lock; no clock involved
        assert lock.waiting == 3
    await asyncio.gather(*waiters)
    assert entered.is_set()
    assert lock.waiting == 0


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    settings = ServerSettings(
        data_dir=tmp_path / ".ferry", agents=0, local_root=tmp_path, metrics_token="s3cret-token"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        admin = (settings.data_dir / "admin.token").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ferry") as client:
            yield client, admin


async def test_a_metrics_token_is_required_when_set(guarded) -> None:
    client, admin = guarded
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {admin}"}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "s3cret-token" not in refused.text
    allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert allowed.status_code == 200
    assert "s3cret-token" not in allowed.text
    assert "ferry_transfers" in allowed.text
