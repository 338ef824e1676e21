"""Pause and resume in the store (issue 23 item 8): a paused transfer's objects are out of the
queue and any that comes back to it is held too; its active copies finish or, stopped, are
given back unspent; a paused periodic transfer's occurrences are SKIPPED runs; a paused agent
gets no lease."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ferry.api.protocol import ReportedState
from ferry.domain.schedules import Schedule, ScheduleKind, Unit
from ferry.domain.states import AgentState, RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import TransferOptions
from ferry.errors import AlreadyFinished, Conflict, NotFound, TransferNotFound
from ferry.store.abc import TaskResult
from ferry.store.sql_pauses import PAUSE_STOPPED, SERIES_ENDED, SKIPPED_WHILE_PAUSED

from .chunked import chunk, chunk_agent, done, report, started, task_rows
from .factories import new_transfer, planned

TTL = timedelta(minutes=5)


def states(rows) -> list[str]:
    return [row.state for row in rows]


async def test_a_paused_transfer_is_not_leased_until_resumed(store, start, agent_id):
    started_ = await start(tasks=3)
    transfer_id = started_.transfer.id
    outcome = await store.pause_transfer(transfer_id)
    assert (outcome.objects, outcome.stopping_tasks) == (3, 0)
    assert outcome.transfer.paused_at is not None
    assert outcome.transfer.status is TransferStatus.ONGOING  # a pause is no status
    assert await store.lease_tasks(agent_id, limit=10, ttl=TTL) == []
    assert states(await task_rows(store, transfer_id)) == ["PAUSED"] * 3

    resumed = await store.resume_transfer(transfer_id)
    assert (resumed.objects, resumed.transfer.paused_at) == (3, None)
    assert len(await store.lease_tasks(agent_id, limit=10, ttl=TTL)) == 3


async def test_active_copies_finish_and_a_retry_is_held(store, start, agent_id, clock):
    started_ = await start(tasks=3)
    transfer_id = started_.transfer.id
    first, second = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    outcome = await store.pause_transfer(transfer_id)
    assert (outcome.objects, outcome.stopping_tasks) == (1, 0)
    # Not told to stop: a plain pause lets the copies finish.
    assert await store.record_heartbeat(agent_id, {}, TTL, [first.id, second.id]) == []
    ok = TaskResult(first.id, first.lease, TaskState.DONE, bytes=10, checksum="adler32:1")
    retry = TaskResult(second.id, second.lease, TaskState.FAILED, error="503", retryable=True)
    await store.record_results(agent_id, [ok, retry])
    assert await store.requeue_waiting(clock.advance(hours=1)) == 0  # held, not queued
    assert states(await task_rows(store, transfer_id)) == ["DONE", "PAUSED", "PAUSED"]
    assert await store.lease_tasks(agent_id, limit=10, ttl=TTL) == []

    await store.resume_transfer(transfer_id)
    leased = await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    assert len(leased) == 2
    assert second.id in {task.id for task in leased}


async def test_pause_now_stops_copies_and_gives_them_back_unspent(store, start, agent_id):
    started_ = await start(tasks=2)
    transfer_id = started_.transfer.id
    first, second = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    outcome = await store.pause_transfer(transfer_id, stop=True)
    assert (outcome.objects, outcome.stopping_tasks) == (0, 2)
    assert outcome.transfer.pause_stops
    stop = await store.record_heartbeat(agent_id, {}, TTL, [first.id, second.id])
    assert stop == sorted([first.id, second.id])
    # One stopped while copying, one before it began: both back, neither attempt spent.
    stopped = TaskResult(first.id, first.lease, TaskState.CANCELED, bytes=4, error="canceled")
    unstarted = TaskResult(second.id, second.lease, TaskState.CANCELED, started=False)
    await store.record_results(agent_id, [stopped, unstarted])
    rows = await task_rows(store, transfer_id)
    assert states(rows) == ["PAUSED", "PAUSED"]
    run = await store.get_run(transfer_id, 1)
    assert (run.counts.done, run.counts.failed, run.counts.canceled) == (0, 0, 0)
    objects = await store.outcomes(transfer_id, 1, after=0, limit=10)
    [attempt] = objects[0].history
    assert (attempt.state, attempt.error) == ("STOPPED", PAUSE_STOPPED)
    assert objects[1].history == []  # never began: as if never leased

    await store.resume_transfer(transfer_id)
    again = await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    assert len(again) == 2
    # Resumed: its copies are no longer told to stop.
    assert await store.record_heartbeat(agent_id, {}, TTL, [t.id for t in again]) == []
    results = [
        TaskResult(t.id, t.lease, TaskState.DONE, bytes=10, checksum="adler32:1") for t in again
    ]
    await store.record_results(agent_id, results)
    [finished] = await store.finish_runs(store.clock())
    assert finished.status is RunStatus.COMPLETED
    assert (finished.counts.done, finished.counts.total) == (2, 2)


async def test_a_lost_lease_of_a_paused_transfer_is_held(store, start, agent_id, clock):
    started_ = await start(tasks=1)
    await store.lease_tasks(agent_id, limit=1, ttl=TTL)
    await store.pause_transfer(started_.transfer.id)
    assert await store.reap_expired_leases(clock.advance(minutes=10)) == 1
    assert states(await task_rows(store, started_.transfer.id)) == ["PAUSED"]


async def test_a_tree_listed_while_paused_is_held(store, clock, agent_id):
    transfer = await started(store, clock)
    await store.pause_transfer(transfer.id)
    await store.add_tasks(transfer, 1, planned(2, prefix="late"))
    assert states(await task_rows(store, transfer.id)) == ["PAUSED", "PAUSED"]
    assert await store.lease_tasks(agent_id, limit=10, ttl=TTL) == []


async def test_a_stopped_chunk_gives_back_its_rest_held(store, clock):
    agent = await chunk_agent(store, "chunky")
    transfer = await started(store, clock, [chunk(1, 5)])
    [carrier] = await store.lease_tasks(agent, limit=10, ttl=TTL)
    await store.pause_transfer(transfer.id, stop=True)
    assert await store.record_heartbeat(agent, {}, TTL, [carrier.id]) == [carrier.id]
    stopped = (2, ReportedState.CANCELED, 3, None, "canceled", "stopped", False)
    ended = report(carrier, [*done([0, 1]), stopped], ended=True, rest=ReportedState.CANCELED)
    await store.record_chunk_results(agent, [ended])
    rows = await task_rows(store, transfer.id)
    assert [(r.state, r.objects) for r in rows] == [("DONE", 2), ("PAUSED", 3)]
    await store.resume_transfer(transfer.id)
    [again] = await store.lease_tasks(agent, limit=10, ttl=TTL)
    assert again.chunk is not None
    assert again.chunk.only == [2, 3, 4]


async def test_a_deadline_cancels_paused_objects(store, start, clock):
    started_ = await start(tasks=2, options=TransferOptions(deadline_s=60))
    await store.pause_transfer(started_.transfer.id)
    clock.advance(minutes=1)
    [_ended] = await store.end_runs_past_deadline(clock.now)
    [finished] = await store.finish_runs(clock.now)
    assert finished.status is RunStatus.CANCELED
    assert finished.counts.canceled == 2


async def test_cancel_of_a_paused_transfer_cancels_its_objects(store, start):
    started_ = await start(tasks=2)
    await store.pause_transfer(started_.transfer.id)
    outcome = await store.cancel_transfer(started_.transfer.id)
    assert outcome.canceled_tasks == 2
    assert outcome.transfer.paused_at is None


async def test_refusals(store, start, submit, clock):
    with pytest.raises(TransferNotFound):
        await store.pause_transfer("no-such-transfer")
    started_ = await start(tasks=1)
    with pytest.raises(Conflict, match="not paused"):
        await store.resume_transfer(started_.transfer.id)
    await store.pause_transfer(started_.transfer.id)
    with pytest.raises(Conflict, match="paused already"):
        await store.pause_transfer(started_.transfer.id)
    await store.pause_transfer(started_.transfer.id, stop=True)  # adds the stop
    canceled = await submit(next_run_at=clock.now + timedelta(hours=1))
    await store.cancel_transfer(canceled.id)
    with pytest.raises(AlreadyFinished):
        await store.pause_transfer(canceled.id)
    passive = new_transfer(sources=("client:a.bin",), next_run_at=clock.now)
    pushed, _ = await store.create_transfer(passive)
    with pytest.raises(Conflict, match="push or pull"):
        await store.pause_transfer(pushed.id)


async def test_a_paused_one_shot_transfer_waits_for_its_resume(store, submit, clock):
    transfer = await submit(next_run_at=clock.now + timedelta(minutes=5))
    await store.pause_transfer(transfer.id)
    clock.advance(minutes=10)
    assert await store.next_due_at() is None
    assert await store.claim_due_transfers(clock.now, 10) == []
    await store.resume_transfer(transfer.id)
    [run] = await store.claim_due_transfers(clock.now, 10)
    assert run.status is RunStatus.ONGOING


async def periodic(store, clock, **fields):
    schedule = Schedule(ScheduleKind.EVERY, unit=Unit.HOUR, start=clock.now, **fields)
    new = replace(new_transfer(next_run_at=clock.now), schedule=schedule.to_json())
    transfer, _ = await store.create_transfer(new)
    return transfer


async def test_occurrences_due_while_paused_are_skipped_runs(store, clock):
    transfer = await periodic(store, clock)
    first = clock.now
    await store.pause_transfer(transfer.id)
    assert await store.next_due_at() == first  # the due loop wakes to skip it
    [skipped] = await store.claim_due_transfers(clock.now, 10)
    assert (skipped.status, skipped.number, skipped.due_at) == (RunStatus.SKIPPED, 1, first)
    assert await store.claim_due_transfers(clock.now, 10) == []
    after = await store.get_transfer(transfer.id)
    assert (after.status, after.runs) == (TransferStatus.STANDBY, 1)
    assert after.next_run_at == first + timedelta(hours=1)

    clock.advance(hours=3, minutes=30)  # the server was away: three occurrences, one run
    [coalesced] = await store.claim_due_transfers(clock.now, 10)
    assert (coalesced.number, coalesced.occurrences) == (2, 3)
    runs = await store.list_runs(transfer.id, after=0, limit=10)
    assert [(r.status, r.error) for r in runs] == [(RunStatus.SKIPPED, SKIPPED_WHILE_PAUSED)] * 2

    await store.resume_transfer(transfer.id)  # the next occurrence, not a burst
    assert await store.claim_due_transfers(clock.now, 10) == []
    clock.advance(minutes=30)
    [run] = await store.claim_due_transfers(clock.now, 10)
    assert (run.status, run.number, run.due_at) == (
        RunStatus.ONGOING,
        3,
        first + timedelta(hours=4),
    )


async def test_a_series_that_ends_while_paused_is_canceled_saying_so(store, clock):
    transfer = await periodic(store, clock, count=2)
    await store.pause_transfer(transfer.id)
    [first] = await store.claim_due_transfers(clock.now, 10)
    clock.advance(hours=1)
    [last] = await store.claim_due_transfers(clock.now, 10)
    assert (first.status, last.status) == (RunStatus.SKIPPED, RunStatus.SKIPPED)
    ended = await store.get_transfer(transfer.id)
    assert (ended.status, ended.error) == (TransferStatus.CANCELED, SERIES_ENDED)
    assert (ended.next_run_at, ended.paused_at) == (None, None)


async def test_a_paused_agent_drains(store, start, agent_id, register_agent):
    await start(tasks=2)
    other = await register_agent("agent-2")
    [held] = await store.lease_tasks(agent_id, limit=1, ttl=TTL)
    paused = await store.pause_agent("agent-1")
    assert paused.paused_at is not None
    assert paused.state is not AgentState.RETIRED
    assert await store.lease_tasks(agent_id, limit=10, ttl=TTL) == []
    # What it holds it keeps and finishes.
    assert await store.record_heartbeat(agent_id, {}, TTL, [held.id]) == []
    ok = TaskResult(held.id, held.lease, TaskState.DONE, bytes=10, checksum="adler32:1")
    assert len(await store.record_results(agent_id, [ok])) == 1
    assert len(await store.lease_tasks(other, limit=10, ttl=TTL)) == 1
    with pytest.raises(Conflict):
        await store.pause_agent(agent_id)  # by id too
    with pytest.raises(NotFound):
        await store.pause_agent("nobody")
    resumed = await store.resume_agent("agent-1")
    assert resumed.paused_at is None
    with pytest.raises(Conflict):
        await store.resume_agent("agent-1")
