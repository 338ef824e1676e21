"""Runs ended at their transfer's deadline (issue 23 item 6): objects not done are CANCELED
with the reason "deadline", the run ends CANCELED, and a periodic series goes on."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ferry.domain.schedules import Schedule, ScheduleKind, Unit
from ferry.domain.states import RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import TransferOptions
from ferry.store.abc import TaskResult

from .factories import new_transfer, planned

TTL = timedelta(minutes=5)
WITHIN_AN_HOUR = TransferOptions(deadline_s=3600)


async def test_a_run_takes_its_deadline_from_when_it_was_due(store, submit, clock):
    transfer = await submit(options=WITHIN_AN_HOUR, next_run_at=clock.now - timedelta(minutes=5))
    [run] = await store.claim_due_transfers(clock.now, 10)
    assert run.deadline_at == clock.now + timedelta(minutes=55)
    assert (await store.get_run(transfer.id, 1)).deadline_at == run.deadline_at


async def test_an_instant_deadline_is_kept_as_given(store, submit, clock):
    at = clock.now + timedelta(minutes=3)
    await submit(options=TransferOptions(deadline_at=at))
    [run] = await store.claim_due_transfers(clock.now, 10)
    assert run.deadline_at == at


async def test_at_its_deadline_a_run_cancels_what_is_not_done(store, start, clock, agent_id):
    started = await start(tasks=3, options=WITHIN_AN_HOUR)
    first, second = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    done = TaskResult(first.id, first.lease, TaskState.DONE, bytes=10, checksum="adler32:1")
    await store.record_results(agent_id, [done])

    clock.advance(minutes=59)
    assert await store.end_runs_past_deadline(clock.now) == []
    clock.advance(minutes=1)
    [ended] = await store.end_runs_past_deadline(clock.now)
    assert (ended.transfer_id, ended.number) == (started.transfer.id, 1)
    assert await store.end_runs_past_deadline(clock.now) == []  # once

    run = await store.get_run(started.transfer.id, 1)
    assert run.past_deadline
    assert run.counts.canceled == 1
    assert run.error == "deadline: not done by 2030-01-01T13:00:00+00:00"
    # The copy under way is told to stop; it reports, and the run ends CANCELED.
    stopped = TaskResult(second.id, second.lease, TaskState.CANCELED, error="stopped")
    await store.record_results(agent_id, [stopped])
    [finished] = await store.finish_runs(clock.now)
    assert finished.status is RunStatus.CANCELED
    assert (finished.counts.done, finished.counts.canceled) == (1, 2)
    assert finished.error == run.error
    objects = await store.outcomes(started.transfer.id, 1, after=0, limit=10)
    assert [(o.state, o.error) for o in objects if o.state is TaskState.CANCELED] == [
        (TaskState.CANCELED, "stopped"),
        (TaskState.CANCELED, "deadline"),
    ]
    transfer = await store.get_transfer(started.transfer.id)
    assert transfer.status is TransferStatus.CANCELED


async def test_a_run_ended_at_its_deadline_adds_no_more_of_its_listing(store, submit, clock):
    transfer = await submit(options=TransferOptions(deadline_s=60))
    await store.claim_due_transfers(clock.now, 10)
    transfer = await store.get_transfer(transfer.id)
    assert await store.add_tasks(transfer, 1, planned(2))
    clock.advance(minutes=1)
    await store.end_runs_past_deadline(clock.now)

    assert not await store.add_tasks(transfer, 1, planned(2, prefix="later"))
    await store.mark_expanded(transfer.id, 1)  # the listing stops and says so
    run = await store.get_run(transfer.id, 1)
    assert (run.counts.total, run.counts.canceled) == (2, 2)
    assert run.error is not None
    assert run.error.startswith("deadline")
    [finished] = await store.finish_runs(clock.now)
    assert finished.status is RunStatus.CANCELED


async def test_a_periodic_series_goes_on_after_a_run_ended_at_its_deadline(store, clock):
    schedule = Schedule(ScheduleKind.EVERY, unit=Unit.HOUR, start=clock.now)
    new = new_transfer(next_run_at=clock.now, options=TransferOptions(deadline_s=600))
    transfer, _ = await store.create_transfer(replace(new, schedule=schedule.to_json()))
    first_due = clock.now
    [run] = await store.claim_due_transfers(clock.now, 10)
    await store.add_tasks(await store.get_transfer(transfer.id), run.number, planned(1))
    clock.advance(minutes=10)

    await store.end_runs_past_deadline(clock.now)
    [finished] = await store.finish_runs(clock.now)

    assert finished.status is RunStatus.CANCELED
    after = await store.get_transfer(transfer.id)
    assert after.status is TransferStatus.STANDBY
    assert after.next_run_at == first_due + timedelta(hours=1)
    [second] = await store.claim_due_transfers(first_due + timedelta(hours=1), 10)
    assert second.deadline_at == first_due + timedelta(hours=1, minutes=10)


# --- late runs ---------------------------------------------------------------------------------
LATE = TransferOptions(late_after_s=300, notify="https://hooks.example.org/ferry")


async def notifications_of(store, clock):
    return [n.payload for n in await store.due_notifications(clock.now + timedelta(days=1), 100)]


async def test_a_run_not_started_in_time_is_told_late_once(store, submit, clock):
    transfer = await submit(options=LATE)
    due = clock.now
    clock.advance(minutes=4, seconds=59)
    assert await store.note_late_runs(clock.now) == []
    clock.advance(seconds=1)  # no server claimed it meanwhile

    [late] = await store.note_late_runs(clock.now)

    assert (late.transfer, late.run, late.started) == (transfer.id, 1, False)
    assert (late.due_at, late.late_after_s) == (due.isoformat(), 300)
    [payload] = await notifications_of(store, clock)
    assert payload["event"] == "run.late"
    assert (payload["transfer"], payload["run"], payload["scope"]) == (transfer.id, 1, "default")
    assert await store.note_late_runs(clock.now) == []
    await store.claim_due_transfers(clock.now, 10)  # it starts, late: told already
    assert await store.note_late_runs(clock.now) == []


async def test_a_run_opened_late_before_it_was_told_is_told_as_started(store, submit, clock):
    transfer = await submit(options=LATE)
    clock.advance(minutes=6)
    [run] = await store.claim_due_transfers(clock.now, 10)

    [late] = await store.note_late_runs(clock.now)

    assert (late.transfer, late.run, late.started) == (transfer.id, run.number, True)
    assert await store.note_late_runs(clock.now + timedelta(days=1)) == []  # runs once


async def test_a_periodic_run_held_up_by_the_previous_one_is_told_late(store, clock):
    schedule = Schedule(ScheduleKind.EVERY, unit=Unit.HOUR, start=clock.now)
    new = new_transfer(next_run_at=clock.now, options=LATE)
    transfer, _ = await store.create_transfer(replace(new, schedule=schedule.to_json()))
    first_due = clock.now
    [run] = await store.claim_due_transfers(clock.now, 10)
    await store.add_tasks(await store.get_transfer(transfer.id), run.number, planned(1))
    await store.mark_expanded(transfer.id, run.number)
    clock.advance(hours=1, minutes=4)
    assert await store.note_late_runs(clock.now) == []
    clock.advance(minutes=1)  # the first run still goes on: the second is late

    [late] = await store.note_late_runs(clock.now)

    assert (late.run, late.started) == (2, False)
    assert late.due_at == (first_due + timedelta(hours=1)).isoformat()
    assert await store.note_late_runs(clock.now + timedelta(minutes=30)) == []
