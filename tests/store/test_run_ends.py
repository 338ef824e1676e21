"""How runs end in the SQL store, on a real SQLite file: a cancel (of tasks queued, leased,
reported or added after it), and a run finished COMPLETED, COMPLETED_WITH_ERRORS or FAILED,
once."""

from __future__ import annotations

import pytest

from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import TransferOptions
from ferry.errors import (
    AlreadyFinished,
    TransferNotFound,
)
from ferry.store.abc import TaskResult

from .factories import (
    TTL,
    done,
    failed,
    lease,
    planned,
    states_of,
    tasks_of,
)


async def test_cancel_in_standby_is_immediate(store, submit, clock):
    transfer = await submit()
    outcome = await store.cancel_transfer(transfer.id)
    assert outcome.transfer.status is TransferStatus.CANCELED
    assert (outcome.canceled_tasks, outcome.stopping_tasks) == (0, 0)
    assert outcome.transfer.runs == 0
    assert await store.claim_due_transfers(clock.now, limit=10) == []
    assert await store.next_due_at() is None


async def test_cancel_while_ongoing_stops_queued_and_flags_active(store, start, agent_id):
    started = await start(tasks=3)
    [active] = await lease(store, agent_id, limit=1)
    outcome = await store.cancel_transfer(started.transfer.id)
    assert (outcome.canceled_tasks, outcome.stopping_tasks) == (2, 1)
    assert outcome.transfer.status is TransferStatus.ONGOING  # until its active task stops
    assert await states_of(store, started.transfer.id) == [
        TaskState.ACTIVE,
        TaskState.CANCELED,
        TaskState.CANCELED,
    ]
    assert await store.record_heartbeat(agent_id, {}, TTL, [active.id]) == [active.id]
    assert await lease(store, agent_id) == []


async def test_a_canceled_run_ends_canceled_when_its_active_task_stops(
    store, start, agent_id, clock
):
    started = await start(tasks=2)
    [active] = await lease(store, agent_id, limit=1)
    await store.cancel_transfer(started.transfer.id)
    assert await store.finish_runs(clock.now) == []
    stopped = TaskResult(active.id, active.lease, TaskState.CANCELED, error="stopped")
    await store.record_results(agent_id, [stopped])
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.CANCELED
    assert (await store.get_run(started.transfer.id, 1)).counts.canceled == 2
    assert (await store.get_transfer(started.transfer.id)).status is TransferStatus.CANCELED


async def test_a_lease_the_agent_does_not_list_is_left_to_expire(store, start, agent_id, clock):
    started = await start(tasks=2)
    first, _second = await lease(store, agent_id)  # say the reply carrying ``second`` was lost
    clock.advance(seconds=20)
    assert await store.record_heartbeat(agent_id, {}, TTL, [first.id]) == []
    assert await store.reap_expired_leases(clock.advance(seconds=20)) == 1
    assert await states_of(store, started.transfer.id) == [TaskState.ACTIVE, TaskState.QUEUED]


async def test_a_heartbeat_names_tasks_the_agent_no_longer_holds(store, start, agent_id, clock):
    await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.reap_expired_leases(clock.advance(minutes=1))
    assert await store.record_heartbeat(agent_id, {}, TTL, [task.id]) == [task.id]


async def test_a_task_stopped_by_its_agent_without_a_cancel_is_retried(store, start, agent_id):
    started = await start(tasks=1)
    [active] = await lease(store, agent_id)
    stopped = TaskResult(active.id, active.lease, TaskState.CANCELED, error="agent stopping")
    await store.record_results(agent_id, [stopped])
    assert await states_of(store, started.transfer.id) == [TaskState.WAITING]


async def test_adding_the_same_objects_again_adds_nothing(store, start):
    started = await start(tasks=0)
    await store.add_tasks(started.transfer, 1, planned(3))
    await store.add_tasks(started.transfer, 1, planned(5))  # a listing resumed after a crash
    assert len(await tasks_of(store, started.transfer.id)) == 5
    assert (await store.get_run(started.transfer.id, 1)).counts.total == 5


async def test_a_failure_reported_after_cancel_counts_as_canceled(store, start, agent_id):
    started = await start(tasks=1)
    [active] = await lease(store, agent_id)
    await store.cancel_transfer(started.transfer.id)
    await store.record_results(agent_id, [failed(active, retryable=True)])
    assert await states_of(store, started.transfer.id) == [TaskState.CANCELED]


async def test_an_expired_lease_of_a_canceled_task_cancels_it(store, start, agent_id, clock):
    started = await start(tasks=1)
    await lease(store, agent_id)
    await store.cancel_transfer(started.transfer.id)
    await store.reap_expired_leases(clock.advance(minutes=1))
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.CANCELED


async def test_a_task_released_after_cancel_lets_the_run_end(store, start, agent_id, clock):
    started = await start(tasks=1)
    [active] = await lease(store, agent_id)
    await store.cancel_transfer(started.transfer.id)
    await store.record_results(agent_id, [TaskResult(active.id, active.lease, TaskState.QUEUED)])
    assert await states_of(store, started.transfer.id) == [TaskState.CANCELED]
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.CANCELED


async def test_tasks_added_after_cancel_are_dropped(store, start):
    started = await start(tasks=0)
    await store.cancel_transfer(started.transfer.id)
    await store.add_tasks(started.transfer, 1, planned(3))
    assert await tasks_of(store, started.transfer.id) == []


async def test_cancel_of_a_finished_transfer_is_refused(store, start, agent_id, clock):
    started = await start(tasks=1)
    await store.record_results(agent_id, [done(t) for t in await lease(store, agent_id)])
    await store.finish_runs(clock.now)
    with pytest.raises(AlreadyFinished, match="COMPLETED"):
        await store.cancel_transfer(started.transfer.id)


async def test_cancel_of_a_canceled_transfer_is_refused(store, submit):
    transfer = await submit()
    await store.cancel_transfer(transfer.id)
    with pytest.raises(AlreadyFinished):
        await store.cancel_transfer(transfer.id)


async def test_cancel_of_an_unknown_transfer_is_not_found(store):
    with pytest.raises(TransferNotFound):
        await store.cancel_transfer("00000000-0000-0000-0000-000000000000")


async def _finish_with(store, start, agent_id, clock, outcomes):
    """Start a run with one task per entry, report each ("done" or an error), finish it."""
    started = await start(tasks=len(outcomes))
    leased = await lease(store, agent_id)
    results = [
        done(t) if o == "done" else failed(t, o) for t, o in zip(leased, outcomes, strict=True)
    ]
    await store.record_results(agent_id, results)
    [run] = await store.finish_runs(clock.advance(seconds=5))
    return run, await store.get_transfer(started.transfer.id)


async def test_a_run_where_everything_moved_completes(store, start, agent_id, clock):
    run, transfer = await _finish_with(store, start, agent_id, clock, ["done", "done"])
    assert (run.status, run.finished_at, run.error) == (RunStatus.COMPLETED, clock.now, None)
    assert (transfer.status, transfer.error) == (TransferStatus.COMPLETED, None)
    assert (await store.get_run(transfer.id, 1)).status is RunStatus.COMPLETED


async def test_a_run_with_some_failures_completes_with_errors(store, start, agent_id, clock):
    run, transfer = await _finish_with(
        store, start, agent_id, clock, ["done", "disk on fire", "second failure"]
    )
    assert run.status is RunStatus.COMPLETED_WITH_ERRORS
    assert transfer.status is TransferStatus.COMPLETED_WITH_ERRORS
    assert transfer.error == run.error
    assert transfer.error.startswith("2 of 3 objects failed")
    assert "disk on fire" in transfer.error
    assert "second failure" not in transfer.error


async def test_a_run_where_nothing_moved_fails(store, start, agent_id, clock):
    run, transfer = await _finish_with(store, start, agent_id, clock, ["no", "no"])
    assert (run.status, transfer.status) == (RunStatus.FAILED, TransferStatus.FAILED)


async def test_the_run_error_names_the_first_failed_object(store, start, agent_id, clock):
    _run, transfer = await _finish_with(store, start, agent_id, clock, ["done", "timed out"])
    assert "src:f1" in transfer.error


async def test_the_run_error_is_one_line(store, start, agent_id, clock):
    _run, transfer = await _finish_with(
        store, start, agent_id, clock, ["Traceback:\n  File x\nOSError: boom"]
    )
    assert "\n" not in transfer.error


async def test_a_run_with_unfinished_tasks_stays_open(store, start, agent_id, clock):
    started = await start(tasks=2)
    [first, _second] = await lease(store, agent_id)
    await store.record_results(agent_id, [done(first)])
    assert await store.finish_runs(clock.now) == []
    assert (await store.get_transfer(started.transfer.id)).status is TransferStatus.ONGOING


async def test_a_run_still_expanding_stays_open(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    assert await store.finish_runs(clock.now) == []
    await store.mark_expanded(transfer.id, 1)
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.COMPLETED


async def test_a_run_that_could_not_be_expanded_fails_with_the_reason(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    await store.mark_expanded(transfer.id, 1, error="storage 'src' is not registered")
    [run] = await store.finish_runs(clock.now)
    assert (run.status, run.error) == (RunStatus.FAILED, "storage 'src' is not registered")
    finished = await store.get_transfer(transfer.id)
    assert (finished.status, finished.error) == (TransferStatus.FAILED, run.error)


async def test_a_finished_run_is_finished_once(store, start, agent_id, clock):
    await _finish_with(store, start, agent_id, clock, ["done"])
    assert await store.finish_runs(clock.now) == []


async def test_a_checksum_mismatch_is_retried_then_fails_with_its_class(
    store, start, agent_id, clock
):
    started = await start(tasks=1, options=TransferOptions(retries=1))
    mismatch = "checksum mismatch on dst:f0: expected adler32:0000000a, got adler32:0000000b"

    def damaged(task):
        return TaskResult(
            task.id,
            task.lease,
            TaskState.FAILED,
            error_class="checksum",
            error=mismatch,
            retryable=True,
        )

    [first] = await lease(store, agent_id)
    await store.record_results(agent_id, [damaged(first)])
    assert await states_of(store, started.transfer.id) == [TaskState.WAITING]
    await store.requeue_waiting(clock.advance(minutes=1))
    [second] = await lease(store, agent_id)
    await store.record_results(agent_id, [damaged(second)])
    [(task, attempts)] = await tasks_of(store, started.transfer.id)
    assert task.state is TaskState.FAILED
    assert (task.error_class, task.error) == ("checksum", mismatch)
    assert [a.error_class for a in attempts] == ["checksum", "checksum"]
