"""The link optimizer's store: what each link moved, summed over agents in the transaction
that records a report; an optimized channel's limit, kept with its search and decision; and
the loop that judges each window, driven pass by pass."""

from __future__ import annotations

from datetime import timedelta

from ferry.domain.channels import Channel
from ferry.domain.events import ChannelOptimized
from ferry.domain.optimizer import Decision, Search
from ferry.domain.states import TaskState
from ferry.scheduler.loop import Wakeups
from ferry.scheduler.optimizer import OptimizerLoop
from ferry.store.abc import LinkTally, TaskResult

from .factories import register

TTL = timedelta(seconds=30)
ANY = ("*", "*")


async def test_each_link_sums_what_every_agent_moved(store, start, agent_id) -> None:
    await start(tasks=4)
    other = await register(store, "agent-2")
    a, b = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    c, d = await store.lease_tasks(other, limit=2, ttl=TTL)
    await store.record_results(
        agent_id,
        [
            TaskResult(a.id, a.lease, TaskState.DONE, bytes=100),
            TaskResult(b.id, b.lease, TaskState.FAILED, error_class="NotFound", error="gone"),
        ],
    )
    await store.record_results(other, [TaskResult(c.id, c.lease, TaskState.DONE, bytes=7)])
    await store.record_results(other, [TaskResult(d.id, d.lease, TaskState.DONE, bytes=3)])
    tallies = await store.link_tallies()
    assert list(tallies.values()) == [LinkTally(succeeded=3, failed=1, bytes=110)]


async def test_an_optimized_channel_leases_up_to_the_optimizers_limit(
    store, start, agent_id
) -> None:
    await start(tasks=10)
    await store.put_channel(Channel.optimized(*ANY, min_active=2, max_active=8))
    [channel] = await store.list_channels()
    assert (channel.optimize, channel.min_active, channel.max_active, channel.limit) == (
        True, 2, 8, 2,
    )  # fmt: skip
    assert len(await store.lease_tasks(agent_id, limit=10, ttl=TTL)) == 2

    decision = Decision(5, 2, "throughput grew +50%", 1e6, 1.0, 1.0)
    assert await store.record_channel_decision(ANY, Search(limit=5), decision)
    [channel] = await store.list_channels()
    assert (channel.limit, channel.decision) == (5, decision)
    assert len(await store.lease_tasks(agent_id, limit=10, ttl=TTL)) == 3


async def test_a_decision_is_dropped_once_the_channel_no_longer_optimizes(store) -> None:
    await store.put_channel(Channel(*ANY, max_active=4))
    decision = Decision(5, 2, "throughput grew +50%", 1e6, 1.0, 1.0)
    assert not await store.record_channel_decision(ANY, Search(limit=5), decision)
    [channel] = await store.list_channels()
    assert (channel.limit, channel.decision) == (4, None)


async def test_the_loop_judges_each_window_and_tells_of_a_move_whoever_runs_it(
    store, start, agent_id, clock
) -> None:
    await start(tasks=20)
    await store.put_channel(Channel.optimized(*ANY, min_active=2, max_active=8))
    wakeups = Wakeups()
    heard: list[object] = []
    wakeups.events.relay = heard.append  # what another server of the cluster would be told
    await OptimizerLoop(store, wakeups, clock, window_s=5).run_once()  # opens the window
    for leased in await store.lease_tasks(agent_id, limit=10, ttl=TTL):
        result = TaskResult(leased.id, leased.lease, TaskState.DONE, bytes=1000)
        await store.record_results(agent_id, [result])
    await store.lease_tasks(agent_id, limit=10, ttl=TTL)  # the limit's worth active again
    clock.advance(seconds=5)
    # Another server's turn (a loop that has seen nothing) goes on with the same window.
    await OptimizerLoop(store, wakeups, clock, window_s=5).run_once()

    [channel] = await store.list_channels()
    assert channel.decision is not None
    assert (channel.decision.previous, channel.decision.limit) == (2, 4)
    assert channel.decision.reason == "first window: probing"
    assert channel.decision.objects_per_s == 0.4
    [event] = heard
    assert isinstance(event, ChannelOptimized)
    assert (event.previous, event.limit, event.source_site) == (2, 4, "*")
    # The next window opens once the objects started under 2 have had time to end.
    assert channel.window is not None
    assert channel.window.sums is None
    assert channel.window.at == clock.now.timestamp() + 5.0  # 2 active / 0.4 a second
