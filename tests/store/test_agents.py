"""Agents in the SQL store, on a real SQLite file: registered with a one-time secret (refused when
reused, unknown, expired or another's), registered again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ferry.domain.states import AgentState, TaskState
from ferry.domain.transfers import Role
from ferry.errors import (
    SecretRejected,
    Unauthenticated,
)

from .factories import TTL, done, lease, register, states_of


async def _register(store, secret, name="agent-1"):
    return await store.register_agent(
        secret=secret, principal=None, name=name, host="h", capabilities={"protocols": ["file"]}
    )


async def test_a_one_time_secret_registers_its_agent(store):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    agent, token = await _register(store, secret)
    assert (agent.name, agent.state, agent.capabilities["protocols"]) == (
        "agent-1",
        AgentState.REGISTERED,
        ["file"],
    )
    principal = await store.authenticate(token)
    assert (principal.role, principal.agent_id) == (Role.DAEMON, agent.id)


async def test_a_secret_is_refused_when_reused(store):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    await _register(store, secret)
    with pytest.raises(SecretRejected, match="already used"):
        await _register(store, secret)


async def test_an_unknown_secret_is_refused(store):
    with pytest.raises(SecretRejected, match="unknown"):
        await _register(store, "0" * 64)


async def test_an_expired_secret_is_refused(store, clock):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    clock.advance(minutes=5)
    with pytest.raises(SecretRejected, match="expired"):
        await _register(store, secret)


async def test_a_secret_for_another_agent_is_refused_and_stays_valid(store):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    with pytest.raises(SecretRejected, match="another agent"):
        await _register(store, secret, name="agent-2")
    agent, _token = await _register(store, secret)
    assert agent.name == "agent-1"


async def test_registering_again_revokes_the_old_token(store):
    secrets = [await store.issue_agent_secret("a", timedelta(hours=1)) for _ in range(2)]
    _agent, old = await _register(store, secrets[0], name="a")
    await _register(store, secrets[1], name="a")
    with pytest.raises(Unauthenticated):
        await store.authenticate(old)


async def test_registering_again_releases_the_old_leases(store, start, agent_id):
    started = await start(tasks=2)
    leased = await lease(store, agent_id)
    again = await register(store, "agent-1")
    assert again == agent_id
    assert await states_of(store, started.transfer.id) == [TaskState.QUEUED] * 2
    assert len(await store.record_results(agent_id, [done(t) for t in leased])) == 0
    assert [t.attempt for t in await lease(store, agent_id)] == [2, 2]


async def test_heartbeat_marks_alive_and_extends_leases(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    clock.advance(seconds=20)
    assert await store.record_heartbeat(agent_id, {"active": 1}, TTL, [task.id]) == []
    assert await store.reap_expired_leases(clock.advance(seconds=20)) == 0
    assert await states_of(store, started.transfer.id) == [TaskState.ACTIVE]
    [agent] = await store.list_agents()
    assert (agent.state, agent.status, agent.last_heartbeat) == (
        AgentState.ALIVE,
        {"active": 1},
        clock.now - timedelta(seconds=20),
    )


async def test_a_lost_agent_gives_its_tasks_back_at_once(store, start, agent_id):
    started = await start(tasks=2)
    await lease(store, agent_id)
    assert await store.mark_agent_lost(agent_id, "no heartbeat") == 2
    assert await states_of(store, started.transfer.id) == [TaskState.QUEUED] * 2
    [agent] = await store.list_agents()
    assert agent.state is AgentState.LOST
