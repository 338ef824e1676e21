"""The dashboard overview's aggregates: each link's queued, active, done and failed objects of
the last hour, and the next scheduled runs, as a viewer's scopes allow."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy.dialects import sqlite

from ferry.domain.states import TaskState
from ferry.store.abc import TaskResult
from ferry.store.sql import SqlStore
from ferry.store.sql_gauges import count_by_queue

TTL = timedelta(seconds=30)
HOUR = timedelta(hours=1)


async def test_a_link_counts_what_waits_moves_and_ended_in_the_window(
    store, start, agent_id, clock
):
    await start(tasks=5)
    done1, done2, failed, moving = await store.lease_tasks(agent_id, limit=4, ttl=TTL)
    await store.record_results(
        agent_id,
        [
            TaskResult(done1.id, done1.lease, TaskState.DONE, bytes=100),
            TaskResult(done2.id, done2.lease, TaskState.DONE, bytes=50),
            TaskResult(
                failed.id, failed.lease, TaskState.FAILED, error_class="NotFound", error="gone"
            ),
        ],
    )
    [link] = await store.link_activity(clock.now - HOUR, None)
    assert (link.queued, link.active, link.done, link.failed) == (1, 1, 2, 1)
    assert link.bytes == 150
    assert (link.top_error, link.top_error_count) == ("NotFound: gone", 1)
    assert link.first_done_at is not None
    assert moving


async def test_a_links_bytes_are_counted_per_minute_after_the_windows_start(
    store, start, agent_id, clock
):
    """The overview's chart: each minute of the window holds the bytes of the objects that
    ended in it, the minutes counted from the window's start."""
    await start(tasks=3)
    first, second, third = await store.lease_tasks(agent_id, limit=3, ttl=timedelta(hours=1))
    ended = clock.now
    await store.record_results(
        agent_id, [TaskResult(first.id, first.lease, TaskState.DONE, bytes=100)]
    )
    clock.advance(seconds=30)
    await store.record_results(
        agent_id, [TaskResult(second.id, second.lease, TaskState.DONE, bytes=50)]
    )
    clock.advance(seconds=60)
    await store.record_results(
        agent_id, [TaskResult(third.id, third.lease, TaskState.DONE, bytes=7)]
    )
    since = ended - timedelta(minutes=58)  # first and second end in minute 58, third in 59
    [link] = await store.link_activity(since, None)
    assert link.per_minute == ((58, 150), (59, 7))
    assert (link.done, link.bytes, link.first_done_at) == (3, 157, ended)
    assert await store.link_activity(since, ["elsewhere"]) == []


async def test_what_ended_before_the_window_is_not_counted(store, start, agent_id, clock):
    await start(tasks=1)
    [task] = await store.lease_tasks(agent_id, limit=1, ttl=TTL)
    await store.record_results(agent_id, [TaskResult(task.id, task.lease, TaskState.DONE)])
    clock.advance(hours=2)
    assert await store.link_activity(clock.now - HOUR, None) == []


async def test_a_viewer_sees_the_links_of_its_scopes_only(store, start, clock):
    await start(tasks=2)
    assert [a.queued for a in await store.link_activity(clock.now - HOUR, ["default"])] == [2]
    assert await store.link_activity(clock.now - HOUR, ["elsewhere"]) == []


async def test_the_next_runs_come_soonest_first_and_within_scopes(store, submit, clock):
    later = await submit(next_run_at=clock.now + 2 * HOUR)
    sooner = await submit(next_run_at=clock.now + HOUR)
    runs = await store.next_runs(None, 10)
    assert [r.transfer_id for r in runs] == [sooner.id, later.id]
    assert runs[0].due_at == clock.now + HOUR
    assert [r.transfer_id for r in await store.next_runs(None, 1)] == [sooner.id]
    assert await store.next_runs(["elsewhere"], 10) == []


@pytest.mark.parametrize("scopes", [None, ["a", "b"]])
async def test_queued_tasks_are_counted_in_the_queue_index_order(tmp_path, scopes):
    """The overview's count of QUEUED tasks reads the queue's index without sorting its
    entries again (SQLite's plan): grouped by link alone, it sorted every queued task."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await store.open()
    await store.close()
    statement = count_by_queue(TaskState.QUEUED, scopes)
    compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {compiled}").fetchall()
    assert "ix_tasks_queue" in str(plan)
    assert "TEMP B-TREE" not in str(plan), plan
