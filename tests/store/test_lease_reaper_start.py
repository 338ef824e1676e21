"""The lease reaper of a server that starts, on SQLite and PostgreSQL: while no server ran, no
agent's heartbeat could be recorded, so every lease looks expired; the reaper gives the agents
one lease TTL to renew theirs before it reaps, and then reaps only those not renewed."""

from __future__ import annotations

import pytest

from ferry.domain.transfers import Storage
from ferry.scheduler.leases import LeaseReaper
from ferry.scheduler.loop import Wakeups

from .chunked import TTL, chunk, chunk_agent, started, task_rows


@pytest.fixture
async def sites(store, tmp_path) -> None:
    for name, site in (("src", "A"), ("dst", "B")):
        await store.put_storage(Storage(name, (tmp_path / name).as_uri(), site=site))


async def test_a_starting_server_reaps_only_the_leases_not_renewed_within_a_ttl(
    store, clock, sites
):
    transfer = await started(store, clock, [chunk(0, 4), chunk(4, 4)])
    alive, dead = await chunk_agent(store, "alive"), await chunk_agent(store, "dead")
    [kept] = await store.lease_tasks(alive, limit=4, ttl=TTL)
    [lost] = await store.lease_tasks(dead, limit=4, ttl=TTL)
    clock.advance(seconds=TTL.total_seconds() * 3)  # every server was down meanwhile

    reaper = LeaseReaper(store, Wakeups(), clock, grace=TTL)
    await reaper.run_once()  # the database answers: one TTL from now
    await reaper.run_once()
    assert {r.state for r in await task_rows(store, transfer.id)} == {"ACTIVE"}

    clock.advance(seconds=5)
    await store.record_heartbeat(alive, {}, TTL, [kept.id])  # the live agent renews its lease
    clock.advance(seconds=TTL.total_seconds() - 4)
    await reaper.run_once()

    states = {r.id: r.state for r in await task_rows(store, transfer.id)}
    assert states == {kept.id: "ACTIVE", lost.id: "QUEUED"}


async def test_its_log_says_the_server_starts_not_that_the_database_is_back(store, clock, caplog):
    reaper = LeaseReaper(store, Wakeups(), clock, grace=TTL)
    with caplog.at_level("INFO", logger="ferry.scheduler"):
        await reaper.run_once()
    assert [r.getMessage() for r in caplog.records] == [
        f"the server starts: no lease is reaped for {TTL.total_seconds():.0f} s,"
        " while agents renew them"
    ]
