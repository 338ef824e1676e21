"""Carriers that lose their lease, and carriers canceled, on SQLite and PostgreSQL: the objects
not reported get a LOST outcome and travel again in the same row, the reported ones never;
queued carriers are canceled at once and counted by their objects."""

from __future__ import annotations

import pytest

from ferry.domain.transfers import Storage, TransferOptions

from .chunked import (
    TTL,
    chunk,
    chunk_agent,
    done,
    outcome_rows,
    report,
    run_row,
    single,
    started,
    task_rows,
)


@pytest.fixture
async def sites(store, tmp_path) -> None:
    for name, site in (("src", "A"), ("dst", "B")):
        await store.put_storage(Storage(name, (tmp_path / name).as_uri(), site=site))


async def test_an_expired_carrier_loses_only_its_unreported_objects(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 5)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    await store.record_chunk_results(agent, [report(carrier, done([0, 2]))])

    assert await store.reap_expired_leases(clock.advance(seconds=31)) == 1

    [row] = await task_rows(store, transfer.id)
    assert (row.id, row.state, row.members, row.objects, row.object) == (
        carrier.id,
        "QUEUED",
        [1, 3, 4],
        3,
        2,
    )
    assert (row.attempts, row.size, row.lease_agent) == (1, 30, None)
    outcomes = [(o.object, o.attempt, o.state) for o in await outcome_rows(store, transfer.id)]
    assert outcomes == [
        (1, 1, "DONE"),
        (2, 1, "LOST"),
        (3, 1, "DONE"),
        (4, 1, "LOST"),
        (5, 1, "LOST"),
    ]
    run = await run_row(store, transfer.id)
    assert (run.done, run.failed, run.canceled) == (2, 0, 0)

    [again] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    assert (again.id, again.attempt, again.chunk.only) == (carrier.id, 2, [1, 3, 4])
    await store.record_chunk_results(agent, [report(again, done([1, 3, 4]), ended=True)])
    [finished] = await store.finish_runs(clock.now)
    assert (finished.counts.done, finished.counts.total) == (5, 5)


async def test_the_lost_objects_are_left_over_with_their_temporary_names(store, clock, sites):
    transfer = await started(store, clock, [single("a"), chunk(1, 3)])
    agent = await chunk_agent(store, "agent-1")
    leased = await store.lease_tasks(agent, limit=100, ttl=TTL)
    [carrier] = [task for task in leased if task.chunk is not None]
    await store.record_chunk_results(agent, [report(carrier, done([0]))])
    await store.reap_expired_leases(clock.advance(seconds=31))

    lost = await store.lost_attempts(transfer.id, 1)

    chunked = sorted((x.destination, x.number, x.tag) for x in lost if x.tag is not None)
    assert chunked == [("dst:out/c2", 1, "r1o3"), ("dst:out/c3", 1, "r1o4")]


async def test_a_carrier_out_of_attempts_fails_its_unreported_objects(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 3)], options=TransferOptions(retries=0))
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    await store.record_chunk_results(agent, [report(carrier, done([1]))])

    await store.reap_expired_leases(clock.advance(seconds=31))

    [row] = await task_rows(store, transfer.id)
    assert (row.state, row.objects) == ("DONE", 1)  # ended: the one object it moved
    states = [o.state for o in await outcome_rows(store, transfer.id)]
    assert states == ["FAILED", "DONE", "FAILED"]
    [finished] = await store.finish_runs(clock.now)
    assert (finished.counts.done, finished.counts.failed) == (1, 2)


async def test_an_agent_lost_requeues_its_carriers(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 2)])
    agent = await chunk_agent(store, "agent-1")
    await store.lease_tasks(agent, limit=100, ttl=TTL)

    assert await store.mark_agent_lost(agent, "no heartbeat") == 1

    [row] = await task_rows(store, transfer.id)
    assert (row.state, row.members) == ("QUEUED", None)
    assert {o.state for o in await outcome_rows(store, transfer.id)} == {"LOST"}


async def test_a_leaving_agent_gives_an_unreceived_carrier_back_whole(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 3), chunk(3, 3)])
    agent = await chunk_agent(store, "agent-1")
    first, second = await store.lease_tasks(agent, limit=100, ttl=TTL)
    await store.record_chunk_results(agent, [report(first, done([0]))])

    assert await store.retire_agent(agent) == 2

    rows = {row.id: row for row in await task_rows(store, transfer.id)}
    assert (rows[second.id].state, rows[second.id].members, rows[second.id].attempts) == (
        "QUEUED",
        None,
        0,
    )
    assert (rows[first.id].state, rows[first.id].members) == ("QUEUED", [1, 2])
    assert await outcome_rows(store, transfer.id) == [
        o for o in await outcome_rows(store, transfer.id) if o.state == "DONE"
    ]


async def test_queued_carriers_are_canceled_at_once_counted_by_objects(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 500), chunk(500, 500)], [single("x")])
    agent = await chunk_agent(store, "agent-1")
    [active] = await store.lease_tasks(agent, limit=500, ttl=TTL)

    outcome = await store.cancel_transfer(transfer.id)

    assert outcome.canceled_tasks == 501  # objects
    run = await run_row(store, transfer.id)
    assert (run.canceled, run.total) == (501, 1001)
    states = {row.id: row.state for row in await task_rows(store, transfer.id)}
    assert states.pop(active.id) == "ACTIVE"
    assert set(states.values()) == {"CANCELED"}
    assert await outcome_rows(store, transfer.id) == []
