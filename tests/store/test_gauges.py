"""The counts the monitoring reads at each scrape, and what an applied result tells it."""

from __future__ import annotations

from datetime import timedelta

from ferry.domain.states import TaskState
from ferry.store.abc import TaskResult

TTL = timedelta(seconds=30)


async def test_the_gauges_count_transfers_queued_and_active_objects_and_agents(
    store, start, submit, agent_id, clock
):
    await submit(next_run_at=clock.now + timedelta(hours=1))  # STANDBY: due later
    started = await start(tasks=3)
    leased = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    gauges = await store.gauges()
    assert gauges.transfers == {"STANDBY": 1, "ONGOING": 1}
    assert gauges.queued == {"default": 1}
    link = await _link(store, started.transfer.id)
    assert gauges.active == {link: 2}
    assert sum(gauges.agents.values()) == 1
    assert leased


async def test_an_applied_result_names_its_scope_link_and_bytes(store, start, agent_id):
    started = await start(tasks=2)
    done, failed = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    changes = await store.record_results(
        agent_id,
        [
            TaskResult(done.id, done.lease, TaskState.DONE, bytes=10),
            TaskResult(failed.id, failed.lease, TaskState.FAILED, bytes=3, error="no"),
        ],
    )
    link = await _link(store, started.transfer.id)
    by_task = {change.task_id: change for change in changes}
    assert (by_task[done.id].state, by_task[done.id].bytes) == (TaskState.DONE, 10)
    assert by_task[failed.id].bytes == 3
    for change in changes:
        assert (change.scope, change.source_site, change.destination_site) == ("default", *link)
    assert (await store.gauges()).active == {}


async def _link(store, transfer_id: str) -> tuple[str, str]:
    """The (source site, destination site) the store gave the transfer's tasks."""
    from sqlalchemy import select

    from ferry.store import tables as t

    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.tasks.c.source_site, t.tasks.c.destination_site)
                .where(t.tasks.c.transfer_id == transfer_id)
                .limit(1)
            )
        ).one()
    return (row[0], row[1])
