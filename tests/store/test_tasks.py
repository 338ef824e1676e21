"""Tasks in the SQL store, on a real SQLite file: added by expansion, leased once each, reported
(done, skipped, failed, retried, released), paged as outcomes, taken back when a lease expires."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from ferry.domain.locations import parse_location
from ferry.domain.states import RunStatus, TaskState
from ferry.domain.transfers import PlannedTask, TransferOptions
from ferry.store import tables
from ferry.store.abc import TaskResult
from ferry.store.sql_tasks import RETRY_CAP

from .factories import done, failed, lease, planned, states_of, tasks_of


async def test_a_claimed_run_waits_for_expansion_until_marked(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    [(pending, run)] = await store.runs_to_expand(limit=10)
    assert (pending.id, run.number) == (transfer.id, 1)
    await store.mark_expanded(transfer.id, 1)
    assert await store.runs_to_expand(limit=10) == []


async def test_a_runs_last_tasks_mark_it_expanded_with_them(store, submit, clock, agent_id):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    transfer = await store.get_transfer(transfer.id)
    assert await store.add_tasks(transfer, 1, planned(2), expanded=True)
    assert await store.runs_to_expand(limit=10) == []
    run = await store.get_run(transfer.id, 1)
    assert (run.expanded, run.counts.total) == (True, 2)
    await store.record_results(agent_id, [done(task) for task in await lease(store, agent_id)])
    [ended] = await store.finish_runs(clock.now)
    assert (ended.status, ended.counts.done) == (RunStatus.COMPLETED, 2)


async def test_a_canceled_runs_last_tasks_are_not_added_but_it_is_expanded(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    transfer = await store.get_transfer(transfer.id)
    await store.cancel_transfer(transfer.id)
    assert not await store.add_tasks(transfer, 1, planned(2), expanded=True)
    assert (await store.get_run(transfer.id, 1)).expanded
    assert await tasks_of(store, transfer.id) == []


async def test_thousands_of_tasks_are_added_in_one_call(store, start):
    started = await start(tasks=0)
    await store.add_tasks(started.transfer, 1, planned(5_000))
    assert (await store.get_run(started.transfer.id, 1)).counts.total == 5_000
    tasks = await tasks_of(store, started.transfer.id)
    assert len(tasks) == 5_000
    assert {task.state for task, _ in tasks} == {TaskState.QUEUED}


async def test_planned_failures_are_counted_at_once(store, start):
    started = await start(tasks=0)
    broken = PlannedTask(
        parse_location("src:gone"), parse_location("dst:gone"), state=TaskState.FAILED, error="x"
    )
    await store.add_tasks(started.transfer, 1, [broken, *planned(2)])
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.total, counts.failed) == (3, 1)


async def test_each_task_is_leased_once(store, start, agent_id):
    await start(tasks=5)
    first = await lease(store, agent_id, limit=3)
    second = await lease(store, agent_id, limit=3)
    assert (len(first), len(second)) == (3, 2)
    assert {t.id for t in first}.isdisjoint(t.id for t in second)
    assert await lease(store, agent_id) == []


async def test_a_leased_task_carries_its_run_options_and_attempt(store, start, agent_id):
    options = TransferOptions(retries=1, priority=4)
    started = await start(tasks=2, options=options)
    leased = await lease(store, agent_id)
    assert {t.transfer_id for t in leased} == {started.transfer.id}
    assert {(t.run, t.attempt, t.options) for t in leased} == {(1, 1, options)}
    assert len({t.lease for t in leased}) == 1
    assert leased[0].source.storage == "src"


async def test_concurrent_leases_never_share_a_task(store, start, register_agent):
    await start(tasks=100)
    a, b = await register_agent("a"), await register_agent("b")
    first, second = await asyncio.gather(lease(store, a, 60), lease(store, b, 60))
    ids_a, ids_b = {t.id for t in first}, {t.id for t in second}
    assert ids_a.isdisjoint(ids_b)
    assert len(ids_a | ids_b) == 100


async def test_higher_priority_is_leased_first_then_age(store, start, agent_id):
    low = await start(tasks=2, options=TransferOptions(priority=1))
    high = await start(tasks=2, options=TransferOptions(priority=5))
    low_ids = [task.task_id for task, _ in await tasks_of(store, low.transfer.id)]
    high_ids = [task.task_id for task, _ in await tasks_of(store, high.transfer.id)]
    leased = await lease(store, agent_id, limit=3)
    assert {t.id for t in leased} == {*high_ids, low_ids[0]}


async def test_done_results_count_objects_and_bytes(store, start, agent_id):
    started = await start(tasks=2)
    leased = await lease(store, agent_id)
    assert len(await store.record_results(agent_id, [done(t, 100) for t in leased])) == 2
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.done, counts.bytes) == (2, 200)
    [(task, attempts), _] = await tasks_of(store, started.transfer.id)
    assert (task.state, task.checksum, task.bytes_done) == (TaskState.DONE, "adler32:1", 100)
    assert [a.number for a in attempts] == [1]


async def test_an_object_moved_is_its_tasks_last_attempt_and_the_others_have_rows(
    store, start, agent_id, clock
):
    """The attempt that moves an object is kept in its task's row, the others (here a failure
    retried) in rows of their own; the history reads both, in order, with the same fields."""
    started = await start(tasks=3)
    first, second, third = await lease(store, agent_id)
    leased_at = clock.now
    clock.advance(seconds=2)
    skipped = TaskResult(third.id, third.lease, TaskState.SKIPPED, bytes=7)
    retry = failed(second, "reset", retryable=True)
    await store.record_results(agent_id, [done(first, 100), retry, skipped])
    assert await store.requeue_waiting(clock.advance(seconds=RETRY_CAP.total_seconds())) == 1
    [again] = await lease(store, agent_id)
    await store.record_results(agent_id, [done(again, 50)])

    history = {obj.task_id: tried for obj, tried in await tasks_of(store, started.transfer.id)}
    [moved] = history[first.id]
    assert (moved.number, moved.state, moved.agent, moved.bytes) == (1, "DONE", agent_id, 100)
    assert (moved.started_at, moved.finished_at) == (leased_at, leased_at + timedelta(seconds=2))
    assert [(a.number, a.state, a.error) for a in history[second.id]] == [
        (1, "FAILED", "reset"),
        (2, "DONE", None),
    ]
    assert [(a.number, a.state, a.bytes) for a in history[third.id]] == [(1, "SKIPPED", 7)]
    async with store.engine.connect() as conn:
        kept = (
            await conn.execute(select(tables.attempts.c.task_id, tables.attempts.c.state))
        ).all()
    assert [tuple(row) for row in kept] == [(second.id, "FAILED")]


async def test_skipped_and_failed_results_are_counted(store, start, agent_id):
    started = await start(tasks=2)
    first, second = await lease(store, agent_id)
    skipped = TaskResult(first.id, first.lease, TaskState.SKIPPED)
    await store.record_results(agent_id, [skipped, failed(second)])
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.skipped, counts.failed, counts.done, counts.bytes) == (1, 1, 0, 0)
    assert await states_of(store, started.transfer.id) == [TaskState.SKIPPED, TaskState.FAILED]


async def test_a_duplicated_report_is_applied_once(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    assert len(await store.record_results(agent_id, [done(task)])) == 1
    assert len(await store.record_results(agent_id, [done(task)])) == 0
    assert (await store.get_run(started.transfer.id, 1)).counts.done == 1
    [(_task, attempts)] = await tasks_of(store, started.transfer.id)
    assert len(attempts) == 1


async def test_a_report_with_a_stale_lease_is_ignored(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    stale = TaskResult(task.id, "not-the-lease", TaskState.DONE, bytes=1)
    assert len(await store.record_results(agent_id, [stale])) == 0
    assert await states_of(store, started.transfer.id) == [TaskState.ACTIVE]


async def test_a_report_from_another_agent_is_ignored(store, start, agent_id, register_agent):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    other = await register_agent("other")
    assert len(await store.record_results(other, [done(task)])) == 0
    assert (await store.get_run(started.transfer.id, 1)).counts.done == 0


async def test_retryable_failure_waits_for_its_backoff(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "reset", retryable=True)])
    assert await states_of(store, started.transfer.id) == [TaskState.WAITING]
    assert await store.requeue_waiting(clock.now) == 0
    assert await lease(store, agent_id) == []
    assert (await store.get_run(started.transfer.id, 1)).counts.failed == 0


async def test_a_waiting_task_is_queued_again_after_its_backoff(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "reset", retryable=True)])
    assert await store.requeue_waiting(clock.advance(seconds=RETRY_CAP.total_seconds())) == 1
    [again] = await lease(store, agent_id)
    assert (again.id, again.attempt) == (task.id, 2)
    await store.record_results(agent_id, [done(again)])
    [(final, attempts)] = await tasks_of(store, started.transfer.id)
    assert (final.state, final.attempts) == (TaskState.DONE, 2)
    assert [(a.number, a.error) for a in attempts] == [(1, "reset"), (2, None)]


async def test_retryable_failure_without_attempts_left_fails(store, start, agent_id):
    started = await start(tasks=1, options=TransferOptions(retries=0))
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, retryable=True)])
    assert await states_of(store, started.transfer.id) == [TaskState.FAILED]
    assert (await store.get_run(started.transfer.id, 1)).counts.failed == 1


async def test_permanent_failure_fails_at_once(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "denied")])
    [(final, attempts)] = await tasks_of(store, started.transfer.id)
    assert (final.state, final.error, final.error_class) == (TaskState.FAILED, "denied", "e")
    assert [a.error for a in attempts] == ["denied"]


async def test_a_released_task_is_requeued_without_an_attempt(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    released = TaskResult(task.id, task.lease, TaskState.QUEUED)
    assert len(await store.record_results(agent_id, [released])) == 1
    [again] = await lease(store, agent_id)
    assert (again.id, again.attempt) == (task.id, 1)
    [(_task, attempts)] = await tasks_of(store, started.transfer.id)
    assert attempts == []


async def test_outcomes_page_by_task_id(store, start):
    started = await start(tasks=5)
    first = await store.outcomes(started.transfer.id, 1, after=0, limit=2)
    rest = await store.outcomes(started.transfer.id, 1, after=first[-1].number, limit=10)
    ids = [obj.number for obj in first + rest]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


async def test_outcomes_of_one_state_page_among_themselves(store, start, agent_id):
    started = await start(tasks=5)
    leased = await lease(store, agent_id)
    failed = [TaskResult(t.id, t.lease, TaskState.FAILED, error="denied") for t in leased[1:4]]
    await store.record_results(agent_id, failed)
    transfer_id = started.transfer.id

    first = await store.outcomes(transfer_id, 1, after=0, limit=2, state=TaskState.FAILED)
    rest = await store.outcomes(
        transfer_id, 1, after=first[-1].number, limit=10, state=TaskState.FAILED
    )
    assert [o.task_id for o in first + rest] == sorted(t.id for t in leased[1:4])
    assert {o.state for o in first + rest} == {TaskState.FAILED}


async def test_an_expired_lease_is_requeued_after_the_ttl(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    assert await store.reap_expired_leases(clock.advance(seconds=29)) == 0
    assert await store.reap_expired_leases(clock.advance(seconds=2)) == 1
    [(requeued, attempts)] = await tasks_of(store, started.transfer.id)
    assert requeued.state is TaskState.QUEUED
    assert [(a.number, a.error) for a in attempts] == [(1, "lease expired")]
    assert len(await store.record_results(agent_id, [done(task)])) == 0


async def test_an_expired_lease_fails_the_task_when_attempts_run_out(store, start, agent_id, clock):
    started = await start(tasks=1, options=TransferOptions(retries=1))
    for _ in range(2):
        await lease(store, agent_id)
        assert await store.reap_expired_leases(clock.advance(seconds=31)) == 1
    [(task, attempts)] = await tasks_of(store, started.transfer.id)
    assert (task.state, task.attempts, len(attempts)) == (TaskState.FAILED, 2, 2)
    assert (await store.get_run(started.transfer.id, 1)).counts.failed == 1
