"""Periodic transfers in the store: coalesced runs, no overlap, the series' end."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ferry.domain.schedules import Schedule, ScheduleKind, Unit
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.store.abc import TaskResult

from .factories import new_transfer, planned, register


async def periodic(store, clock, **fields):
    schedule = Schedule(ScheduleKind.EVERY, unit=Unit.HOUR, start=clock.now, **fields)
    new = replace(new_transfer(next_run_at=clock.now), schedule=schedule.to_json())
    transfer, _ = await store.create_transfer(new)
    return transfer


async def run_to_the_end(store, clock, transfer_id, *, minutes=10):
    """Claim the transfer's due run, give it one skipped object, and finish it ``minutes`` later."""
    [run] = await store.claim_due_transfers(clock.now, 10)
    transfer = await store.get_transfer(transfer_id)
    await store.add_tasks(transfer, run.number, [])
    await store.mark_expanded(transfer_id, run.number)
    clock.advance(minutes=minutes)
    [finished] = await store.finish_runs(clock.now)
    return run, finished


async def test_a_periodic_run_returns_the_transfer_to_standby(store, clock) -> None:
    transfer = await periodic(store, clock)
    started_at = clock.now
    _run, finished = await run_to_the_end(store, clock, transfer.id)
    assert finished.status is RunStatus.COMPLETED
    after = await store.get_transfer(transfer.id)
    assert after.status is TransferStatus.STANDBY
    assert after.next_run_at == started_at + timedelta(hours=1)
    assert await store.next_due_at() == started_at + timedelta(hours=1)


async def test_missed_occurrences_coalesce_into_one_run(store, clock) -> None:
    transfer = await periodic(store, clock)
    due = clock.now
    clock.advance(days=3)  # the server was down
    [run] = await store.claim_due_transfers(clock.now, 10)
    assert run.due_at == due
    assert run.occurrences == 73  # every hour from the first due one to now, inclusive
    assert await store.claim_due_transfers(clock.now, 10) == []  # one run, not a storm
    assert (await store.get_run(transfer.id, 1)).occurrences == 73


async def test_occurrences_due_while_running_are_skipped(store, clock) -> None:
    transfer = await periodic(store, clock)
    first = clock.now
    _run, finished = await run_to_the_end(store, clock, transfer.id, minutes=150)
    assert finished.skipped_occurrences == 2  # +1 h and +2 h came while it ran
    assert (await store.get_run(transfer.id, 1)).skipped_occurrences == 2
    assert (await store.get_transfer(transfer.id)).next_run_at == first + timedelta(hours=3)


async def test_count_ends_the_series_in_the_last_final_status(store, clock) -> None:
    transfer = await periodic(store, clock, count=2)
    await run_to_the_end(store, clock, transfer.id)
    clock.advance(minutes=50)
    await run_to_the_end(store, clock, transfer.id)
    after = await store.get_transfer(transfer.id)
    assert after.status is TransferStatus.COMPLETED
    assert after.next_run_at is None
    assert after.runs == 2
    assert [r.number for r in await store.list_runs(transfer.id, after=0, limit=10)] == [1, 2]


async def test_until_ends_the_series(store, clock) -> None:
    transfer = await periodic(store, clock, until=clock.now + timedelta(minutes=30))
    await run_to_the_end(store, clock, transfer.id)
    assert (await store.get_transfer(transfer.id)).status is TransferStatus.COMPLETED


async def test_a_canceled_periodic_transfer_runs_no_more(store, clock) -> None:
    transfer = await periodic(store, clock)
    await run_to_the_end(store, clock, transfer.id)
    outcome = await store.cancel_transfer(transfer.id)
    assert outcome.transfer.status is TransferStatus.CANCELED
    assert await store.claim_due_transfers(clock.advance(hours=5), 10) == []


async def test_runs_list_in_pages(store, clock) -> None:
    transfer = await periodic(store, clock)
    for _ in range(3):
        await run_to_the_end(store, clock, transfer.id, minutes=5)
        clock.advance(minutes=55)
    assert [r.number for r in await store.list_runs(transfer.id, after=1, limit=1)] == [2]


async def test_the_next_run_counts_from_when_the_last_object_ended(store, clock) -> None:
    """An occurrence due between a run's last result and its finalize is the next run, not a
    skipped one."""
    transfer = await periodic(store, clock)
    first = clock.now
    [run] = await store.claim_due_transfers(clock.now, 10)
    await store.add_tasks(await store.get_transfer(transfer.id), run.number, planned(1))
    await store.mark_expanded(transfer.id, run.number)
    agent = await register(store, "a1")
    [task] = await store.lease_tasks(agent, limit=1, ttl=timedelta(minutes=5))
    clock.advance(minutes=59, seconds=59)
    await store.record_results(agent, [TaskResult(task.id, task.lease, TaskState.DONE, bytes=1)])
    clock.advance(seconds=2)  # the finalize loop wakes just after the hour
    [finished] = await store.finish_runs(clock.now)
    assert finished.skipped_occurrences == 0
    after = await store.get_transfer(transfer.id)
    assert after.next_run_at == first + timedelta(hours=1)
    assert after.next_run_at < clock.now  # due already: the due loop starts it at once
