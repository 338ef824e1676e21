"""The registry loop against a real SQLite store and real folders, on a clock moved by hand:
silent agents become LOST and their work comes back, storages are health-checked fast then
slow, cached storages expire."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from ferry.domain.events import AgentLost
from ferry.domain.locations import parse_location
from ferry.domain.states import AgentState, TaskState
from ferry.domain.transfers import (
    PlannedTask,
    Storage,
    TransferKind,
    TransferOptions,
    TransferSpec,
)
from ferry.errors import StorageNotFound
from ferry.scheduler.loop import Wakeups
from ferry.scheduler.registry import RegistryLoop, RegistryTimings, StorageCache
from ferry.store.abc import NewTransfer
from ferry.store.sql import SqlStore

from .conftest import Clock

TTL = timedelta(minutes=10)  # leases outlive the test: only the registry loop takes them back
TIMINGS = RegistryTimings(
    lost_after=timedelta(seconds=30),
    health_fast=timedelta(seconds=10),
    health_slow=timedelta(seconds=60),
    fast_for=timedelta(minutes=1),
)
MARK = {"marker": "not checked since"}


@pytest.fixture
def wakeups() -> Wakeups:
    return Wakeups()


@pytest.fixture
def registry(store: SqlStore, wakeups: Wakeups, clock: Clock) -> RegistryLoop:
    return RegistryLoop(store, wakeups, clock=clock, timings=TIMINGS)


async def register(store: SqlStore, name: str) -> str:
    secret = await store.issue_agent_secret(name, timedelta(minutes=5))
    agent, _token = await store.register_agent(
        secret=secret, principal=None, name=name, host="host", capabilities={}
    )
    return agent.id


async def queued(store: SqlStore, clock: Clock, count: int, retries: int = 3) -> str:
    spec = TransferSpec(
        TransferKind.FILE,
        (parse_location("src:a"),),
        parse_location("dst:out"),
        TransferOptions(retries=retries),
    )
    transfer, _ = await store.create_transfer(NewTransfer("default", "admin", spec, {}, clock.now))
    await store.claim_due_transfers(clock.now, 10)
    transfer = await store.get_transfer(transfer.id)
    planned = [
        PlannedTask(parse_location(f"src:f{n}"), parse_location(f"dst:f{n}"), 1)
        for n in range(count)
    ]
    await store.add_tasks(transfer, 1, planned)
    await store.mark_expanded(transfer.id, 1)
    return transfer.id


async def states(store: SqlStore, transfer_id: str) -> list[TaskState]:
    return [obj.state for obj in await store.outcomes(transfer_id, 1, after=0, limit=100)]


# --- silent agents --------------------------------------------------------------------------------


async def test_a_silent_agent_is_lost_and_its_tasks_are_queued_again(
    store, clock, registry, wakeups
):
    transfer_id = await queued(store, clock, 2)
    agent_id = await register(store, "agent-1")
    await store.lease_tasks(agent_id, limit=10, ttl=TTL)

    clock.advance(seconds=30)
    await registry.run_once()
    assert (await store.get_agent(agent_id)).state is AgentState.REGISTERED
    assert await states(store, transfer_id) == [TaskState.ACTIVE] * 2

    clock.advance(seconds=1)
    await registry.run_once()

    assert (await store.get_agent(agent_id)).state is AgentState.LOST
    outcomes = await store.outcomes(transfer_id, 1, after=0, limit=100)
    assert [obj.state for obj in outcomes] == [TaskState.QUEUED] * 2
    assert [[a.state for a in obj.history] for obj in outcomes] == [["LOST"], ["LOST"]]
    assert wakeups.finalize.is_set()
    other = await register(store, "agent-2")
    assert len(await store.lease_tasks(other, limit=10, ttl=TTL)) == 2


async def test_an_agent_that_keeps_beating_is_left_alone(store, clock, registry, wakeups):
    transfer_id = await queued(store, clock, 1)
    agent_id = await register(store, "agent-1")
    [task] = await store.lease_tasks(agent_id, limit=10, ttl=TTL)

    for _ in range(4):
        clock.advance(seconds=20)
        await store.record_heartbeat(agent_id, {}, TTL, [task.id])
        await registry.run_once()

    assert (await store.get_agent(agent_id)).state is AgentState.ALIVE
    assert await states(store, transfer_id) == [TaskState.ACTIVE]
    assert not wakeups.finalize.is_set()


async def test_after_the_database_was_away_agents_are_heard_before_any_is_lost(
    store, clock, registry
):
    """While the database is away no heartbeat is recorded: once it is back, an agent that
    beats again within ``lost_after`` is kept, and one that does not is LOST after it (a
    PostgreSQL stopped 30 s made every agent LOST and its objects copied twice)."""
    transfer_id = await queued(store, clock, 2)
    alive, dead = await register(store, "alive"), await register(store, "dead")
    [kept] = await store.lease_tasks(alive, limit=1, ttl=TTL)
    await store.lease_tasks(dead, limit=1, ttl=TTL)
    registry.found_database_away()  # what the loop is told by a pass that failed so
    clock.advance(seconds=45)  # away for longer than lost_after
    await registry.run_once()  # back: the agents are given lost_after to be heard
    clock.advance(seconds=5)
    await store.record_heartbeat(alive, {}, TTL, [kept.id])
    clock.advance(seconds=20)
    await registry.run_once()
    assert {(await store.get_agent(a)).state for a in (alive, dead)} == {
        AgentState.ALIVE,
        AgentState.REGISTERED,
    }

    clock.advance(seconds=6)
    await registry.run_once()
    assert (await store.get_agent(alive)).state is AgentState.ALIVE
    assert (await store.get_agent(dead)).state is AgentState.LOST
    assert sorted(await states(store, transfer_id)) == sorted([TaskState.ACTIVE, TaskState.QUEUED])


async def test_a_heartbeat_between_the_check_and_the_verdict_keeps_the_agent(store, clock):
    transfer_id = await queued(store, clock, 1)
    agent_id = await register(store, "agent-1")
    [task] = await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    clock.advance(seconds=31)
    since = clock.now - TIMINGS.lost_after
    [silent] = await store.silent_agents(since)  # what the registry loop read
    await store.record_heartbeat(agent_id, {}, TTL, [task.id])  # then the agent spoke

    requeued = await store.mark_agent_lost(silent.id, "no heartbeat", silent_since=since)

    assert requeued == 0
    assert (await store.get_agent(agent_id)).state is AgentState.ALIVE
    assert await states(store, transfer_id) == [TaskState.ACTIVE]


async def test_a_lost_agents_task_without_attempts_left_fails(store, clock, registry):
    transfer_id = await queued(store, clock, 1, retries=0)
    agent_id = await register(store, "agent-1")
    await store.lease_tasks(agent_id, limit=10, ttl=TTL)

    clock.advance(minutes=1)
    await registry.run_once()

    assert await states(store, transfer_id) == [TaskState.FAILED]
    assert (await store.get_run(transfer_id, 1)).counts.failed == 1


async def test_a_lost_agent_is_announced_on_the_event_bus(store, clock, registry, wakeups):
    await queued(store, clock, 3)
    agent_id = await register(store, "agent-1")
    await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    events = wakeups.events.subscribe()
    first = asyncio.ensure_future(anext(events))
    for _ in range(100):  # let the subscription start
        if wakeups.events.subscribers:
            break
        await asyncio.sleep(0)
    assert wakeups.events.subscribers == 1

    clock.advance(minutes=1)
    await registry.run_once()

    event = await asyncio.wait_for(first, timeout=5)
    await events.aclose()
    assert isinstance(event, AgentLost)
    assert (event.agent, event.name, event.requeued) == (agent_id, "agent-1", 3)


async def test_a_lost_agent_is_not_lost_again(store, clock, registry, wakeups):
    agent_id = await register(store, "agent-1")
    clock.advance(minutes=1)
    await registry.run_once()
    assert await store.silent_agents(clock.now) == []
    assert (await store.get_agent(agent_id)).state is AgentState.LOST


# --- storage health -------------------------------------------------------------------------------


async def health_of(store: SqlStore, name: str) -> dict[str, Any]:
    health = (await store.get_storage(name)).health
    assert health is not None
    return health


async def test_storages_are_health_checked(store, registry, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    gone = tmp_path / "gone"
    gone.mkdir()
    await store.put_storage(Storage("here", here.as_uri()))
    await store.put_storage(Storage("gone", gone.as_uri()))
    await store.put_storage(Storage("broken", "nosuchprotocol://anywhere"))
    gone.rmdir()

    await registry.run_once()

    healthy = await health_of(store, "here")
    assert (healthy["reachable"], healthy["error"]) == (True, None)
    assert healthy["latency_ms"] is not None
    deleted = await health_of(store, "gone")
    assert deleted["error"] is not None
    assert "does not exist" in deleted["error"]
    broken = await health_of(store, "broken")
    assert broken["reachable"] is False
    assert broken["error"]


async def test_health_checks_are_frequent_for_a_minute_then_calmer(
    store, clock, registry, tmp_path
):
    await store.put_storage(Storage("here", tmp_path.as_uri()))

    async def checked_after(seconds: float) -> bool:
        """Move the clock, run the loop once, and tell whether it checked the storage."""
        clock.now = registry.started_at + timedelta(seconds=seconds)
        await store.record_health("here", MARK)
        await registry.run_once()
        return await health_of(store, "here") != MARK

    assert await checked_after(0)
    assert not await checked_after(5)
    assert await checked_after(10)
    assert not await checked_after(19)
    assert await checked_after(70)  # past the first minute: every 60 s from here
    assert not await checked_after(80)
    assert not await checked_after(129)
    assert await checked_after(130)


# --- the storage cache ----------------------------------------------------------------------------


async def test_cached_storages_are_kept_for_their_ttl_then_dropped(store, clock, wakeups, tmp_path):
    await store.put_storage(Storage("here", tmp_path.as_uri()))
    cache = StorageCache(store, ttl=timedelta(seconds=30))
    registry = RegistryLoop(store, wakeups, clock=clock, timings=TIMINGS, cache=cache)
    assert (await cache.get("here", clock.now)).url == tmp_path.as_uri()

    await store.put_storage(Storage("here", (tmp_path / "moved").as_uri()))
    clock.advance(seconds=29)
    await registry.run_once()
    assert (await cache.get("here", clock.now)).url == tmp_path.as_uri()

    clock.advance(seconds=1)
    await registry.run_once()
    assert cache.expire(clock.now) == 0  # the loop already dropped it
    assert (await cache.get("here", clock.now)).url == (tmp_path / "moved").as_uri()


async def test_a_forgotten_storage_is_read_again_at_once(store, clock, tmp_path):
    await store.put_storage(Storage("here", tmp_path.as_uri()))
    cache = StorageCache(store)
    await cache.get("here", clock.now)

    await store.delete_storage("here")
    assert (await cache.get("here", clock.now)).name == "here"
    cache.forget("here")
    with pytest.raises(StorageNotFound):
        await cache.get("here", clock.now)
