"""Batches as agents and the expand loop send them: many objects of different fates in one call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask
from ferry.store.abc import TaskResult
from ferry.store.sql_registry import THROUGHPUT_WINDOW

from .factories import planned

TTL = timedelta(seconds=30)


async def test_a_mixed_report_applies_each_result_by_its_kind(store, start, agent_id, clock):
    started = await start(tasks=7)
    leased_at = clock.now
    tasks = await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    done, skipped, denied, reset, unstarted, stopped, stale = tasks
    reported_at = clock.advance(seconds=5)
    changes = await store.record_results(
        agent_id,
        [
            TaskResult(done.id, done.lease, TaskState.DONE, bytes=100, checksum="adler32:1"),
            TaskResult(skipped.id, skipped.lease, TaskState.SKIPPED),
            TaskResult(denied.id, denied.lease, TaskState.FAILED, error="denied"),
            TaskResult(reset.id, reset.lease, TaskState.FAILED, error="reset", retryable=True),
            TaskResult(unstarted.id, unstarted.lease, TaskState.QUEUED),
            TaskResult(stopped.id, stopped.lease, TaskState.CANCELED, error="shutting down"),
            TaskResult(stale.id, "an-old-lease", TaskState.DONE, bytes=7),
        ],
    )
    assert {c.task_id: c.state for c in changes} == {
        done.id: TaskState.DONE,
        skipped.id: TaskState.SKIPPED,
        denied.id: TaskState.FAILED,
        reset.id: TaskState.WAITING,
        unstarted.id: TaskState.QUEUED,
        stopped.id: TaskState.WAITING,  # its agent stopped it: the object still has to move
    }
    outcomes = {obj.task_id: (obj, obj.history) for obj, _ in await _outcomes(store, started)}
    assert outcomes[stale.id][0].state is TaskState.ACTIVE
    assert outcomes[unstarted.id] == (outcomes[unstarted.id][0], [])
    assert outcomes[done.id][0].bytes_done == 100
    for task_id in (done.id, skipped.id, denied.id, reset.id, stopped.id):
        [attempt] = outcomes[task_id][1]
        assert (attempt.number, attempt.agent) == (1, agent_id)
        assert (attempt.started_at, attempt.finished_at) == (leased_at, reported_at)
    assert [a.state for a in outcomes[stopped.id][1]] == ["CANCELED"]
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.done, counts.skipped, counts.failed, counts.bytes) == (1, 1, 1, 100)
    statistics = (await store.agent_statistics([agent_id]))[agent_id]
    assert (statistics.ongoing, statistics.succeeded, statistics.failed) == (1, 2, 2)
    assert (statistics.canceled, statistics.bytes) == (1, 100)


async def test_a_report_of_only_stale_leases_changes_nothing(store, start, agent_id):
    started = await start(tasks=3)
    tasks = await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    stale = [TaskResult(t.id, "an-old-lease", TaskState.DONE, bytes=1) for t in tasks]
    assert await store.record_results(agent_id, stale) == []
    outcomes = await _outcomes(store, started)
    assert [(task.state, attempts) for task, attempts in outcomes] == [(TaskState.ACTIVE, [])] * 3
    assert (await store.agent_statistics([agent_id]))[agent_id].succeeded == 0


async def test_a_result_ends_at_the_same_instant_in_every_query(store, start, agent_id, clock):
    """Times written in bulk are stored in the form of every other write, so that comparisons
    made by the database (as text, on SQLite) agree with those made in Python."""
    await start(tasks=1)
    [task] = await store.lease_tasks(agent_id, limit=1, ttl=TTL)
    ended = clock.advance(seconds=1)
    await store.record_results(agent_id, [TaskResult(task.id, task.lease, TaskState.DONE, 60)])
    clock.now = ended + THROUGHPUT_WINDOW  # the window starts at that very instant
    assert (await store.agent_statistics([agent_id]))[agent_id].throughput == 1.0


async def test_an_expired_lease_beside_a_reported_one_is_lost(store, start, agent_id, clock):
    started = await start(tasks=2)
    first, second = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    await store.record_results(agent_id, [TaskResult(first.id, first.lease, TaskState.DONE)])
    clock.advance(seconds=TTL.total_seconds() + 1)
    assert await store.reap_expired_leases(clock.now) == 1
    outcomes = {obj.task_id: (obj, obj.history) for obj, _ in await _outcomes(store, started)}
    task, [attempt] = outcomes[second.id]
    assert (task.state, attempt.state, attempt.error) == (TaskState.QUEUED, "LOST", "lease expired")


async def test_objects_repeated_in_and_across_pages_are_added_once(store, start):
    started = await start(tasks=0)
    page = planned(3)
    broken = PlannedTask(
        parse_location("src:gone"), parse_location("dst:gone"), state=TaskState.FAILED, error="x"
    )
    await store.add_tasks(started.transfer, 1, [*page, page[0], broken])
    await store.add_tasks(started.transfer, 1, [*page[1:], *planned(2, prefix="g"), broken])
    run = await store.get_run(started.transfer.id, 1)
    assert (run.counts.total, run.counts.failed, run.size_total) == (6, 1, 50)
    outcomes = await _outcomes(store, started)
    assert sorted(str(task.destination) for task, _ in outcomes) == [
        "dst:f0",
        "dst:f1",
        "dst:f2",
        "dst:g0",
        "dst:g1",
        "dst:gone",
    ]


async def _outcomes(store, started):
    """Each object of the run with its attempts."""
    found = await store.outcomes(started.transfer.id, 1, after=0, limit=100)
    return [(obj, obj.history) for obj in found]


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one writer at a time
async def test_a_report_racing_an_expiry_on_another_server_records_nothing(store, start, agent_id):
    """PostgreSQL, two servers: one requeues an expired lease while the other applies the
    agent's late report of it. The report waits for the requeue, then finds the task no longer
    ACTIVE: no attempt, no count (it read the row before the requeue committed, and recorded
    both)."""
    started = await start(tasks=1)
    [task] = await store.lease_tasks(agent_id, limit=1, ttl=TTL)
    other_server = await store.engine.connect()
    transaction = await other_server.begin()
    await other_server.execute(
        text("UPDATE tasks SET state = 'QUEUED', lease_token = NULL WHERE id = :id"),
        {"id": task.id},
    )
    report = asyncio.ensure_future(
        store.record_results(agent_id, [TaskResult(task.id, task.lease, TaskState.DONE, bytes=5)])
    )
    try:
        await _until_blocked_on_a_lock(store)
        assert not report.done()
    finally:
        await transaction.commit()
        await other_server.close()
    assert await report == []
    [(found, attempts)] = await _outcomes(store, started)
    assert (found.state, attempts) == (TaskState.QUEUED, [])
    assert (await store.get_run(started.transfer.id, 1)).counts.done == 0


async def _until_blocked_on_a_lock(store, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while True:
        async with store.engine.connect() as connection:  # a fresh view of the activity
            if (await connection.execute(waiting)).scalar():
                return
        assert asyncio.get_running_loop().time() < deadline, "the report never waited"
        await asyncio.sleep(0.02)
