"""Reports of carriers, on SQLite and PostgreSQL: one outcome per object and attempt, counted
once; a retryable failure becomes one retry carrier, a permanent one the run's error; a report
sent twice changes nothing; two servers on one database count no object twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ferry.api.protocol import ReportedState
from ferry.domain.channels import Channel, ChannelState
from ferry.domain.states import RunStatus
from ferry.domain.transfers import Storage, TransferOptions
from ferry.store.sql import SqlStore

from .chunked import (
    TTL,
    chunk,
    chunk_agent,
    done,
    failed,
    outcome_rows,
    report,
    run_row,
    started,
    task_rows,
)


@pytest.fixture
async def sites(store, tmp_path) -> None:
    for name, site in (("src", "A"), ("dst", "B")):
        await store.put_storage(Storage(name, (tmp_path / name).as_uri(), site=site))


async def test_a_retryable_failure_becomes_one_retry_carrier_and_the_run_completes(
    store, clock, sites
):
    transfer = await started(store, clock, [chunk(0, 5)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    assert (await store.agent_statistics([agent]))[agent].ongoing == 5

    rows = [
        *done([0, 1, 3]),
        failed(2, "timed out", retryable=True),
        failed(4, "reset", retryable=True),
    ]
    applied = await store.record_chunk_results(agent, [report(carrier, rows, ended=True)])

    assert (applied.accepted, applied.ignored) == (5, 0)
    [tally] = applied.carriers
    assert (tally.done, tally.retried, tally.bytes) == (3, 2, 30)
    first, retry = await task_rows(store, transfer.id)
    assert (first.state, first.objects, first.bytes_done) == ("DONE", 3, 30)  # those it moved
    assert (retry.state, retry.origin, retry.members, retry.objects, retry.object) == (
        "WAITING",
        1,
        [2, 4],
        2,
        3,
    )
    assert (retry.attempts, retry.size) == (1, 20)
    assert [(o.object, o.state) for o in await outcome_rows(store, transfer.id)] == [
        (1, "DONE"),
        (2, "DONE"),
        (3, "WAITING"),
        (4, "DONE"),
        (5, "WAITING"),
    ]
    assert (await run_row(store, transfer.id)).done == 3
    stats = (await store.agent_statistics([agent]))[agent]
    assert (stats.ongoing, stats.succeeded, stats.failed, stats.bytes) == (0, 3, 2, 30)

    await store.requeue_waiting(clock.advance(minutes=20))
    [again] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    assert (again.id, again.attempt, again.chunk.only) == (retry.id, 2, [2, 4])
    await store.record_chunk_results(agent, [report(again, done([2, 4]), ended=True)])

    [finished] = await store.finish_runs(clock.now)
    assert finished.status is RunStatus.COMPLETED
    assert (finished.counts.done, finished.counts.total, finished.counts.bytes) == (5, 5, 50)
    # The link's done count: each object once, though two carriers held the retried ones.
    [link] = await store.link_activity(clock.now - timedelta(hours=1), None)
    assert (link.done, link.bytes) == (5, 50)


async def test_a_retry_carrier_of_one_object_is_leased_with_its_list(store, clock, sites):
    """A retry carrier of a single object counts one, like a single task: a lease of only
    such carriers still reads their chunk lists (it answered 500, KeyError, for as long as
    they waited: the reliability suite's corrupting storage found it)."""
    transfer = await started(store, clock, [chunk(0, 3)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    rows = [*done([0, 2]), failed(1, "changed while being copied", retryable=True)]
    await store.record_chunk_results(agent, [report(carrier, rows, ended=True)])

    await store.requeue_waiting(clock.advance(minutes=20))
    [again] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    assert (again.attempt, again.chunk.only) == (2, [1])
    await store.record_chunk_results(agent, [report(again, done([1]), ended=True)])
    [finished] = await store.finish_runs(clock.now)
    assert (finished.status, finished.counts.done) == (RunStatus.COMPLETED, 3)
    assert transfer.id == finished.transfer_id


async def test_a_permanent_failure_ends_the_run_with_its_message(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 3)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)

    rows = [*done([0, 2]), failed(1, "permission denied: out/c1", retryable=False)]
    await store.record_chunk_results(agent, [report(carrier, rows, ended=True)])

    [finished] = await store.finish_runs(clock.now)
    assert finished.status is RunStatus.COMPLETED_WITH_ERRORS
    assert (finished.counts.done, finished.counts.failed) == (2, 1)
    assert finished.error == "1 of 3 objects failed: src:in/c1: permission denied: out/c1"
    [failure] = [o for o in await outcome_rows(store, transfer.id) if o.state == "FAILED"]
    assert (failure.object, failure.error) == (2, "permission denied: out/c1")


async def test_a_report_sent_twice_changes_nothing(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 4)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    partial = report(carrier, [*done([0]), failed(1, "timed out", retryable=True)])

    first = await store.record_chunk_results(agent, [partial])
    again = await store.record_chunk_results(agent, [partial])

    assert (first.accepted, again.accepted, again.ignored) == (2, 0, 2)
    run = await run_row(store, transfer.id)
    assert (run.done, run.bytes) == (1, 10)
    assert len([r for r in await task_rows(store, transfer.id) if r.state == "WAITING"]) == 1
    ending = report(carrier, done([2, 3]), ended=True)
    await store.record_chunk_results(agent, [ending])
    assert (await store.record_chunk_results(agent, [ending])).accepted == 0
    assert (await run_row(store, transfer.id)).done == 3
    assert len(await outcome_rows(store, transfer.id)) == 4


async def test_the_rest_of_a_carrier_given_back_is_queued_again_uncounted(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 4)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)

    ending = report(carrier, done([0]), ended=True, rest=ReportedState.RELEASED)
    await store.record_chunk_results(agent, [ending])

    first, rest = await task_rows(store, transfer.id)
    assert first.state == "DONE"
    assert (rest.state, rest.members, rest.attempts) == ("QUEUED", [1, 2, 3], 0)
    run = await run_row(store, transfer.id)
    assert (run.done, run.canceled) == (1, 0)


async def test_a_canceled_rest_is_counted_and_the_carrier_canceled(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 4)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    await store.cancel_transfer(transfer.id)

    rows = [*done([0]), (1, ReportedState.CANCELED, 3, None, "canceled", "canceled", False)]
    ending = report(carrier, rows, ended=True, rest=ReportedState.CANCELED)
    await store.record_chunk_results(agent, [ending])

    [row] = await task_rows(store, transfer.id)
    assert row.state == "CANCELED"
    run = await run_row(store, transfer.id)
    assert (run.done, run.canceled, run.total) == (1, 3, 4)


async def test_a_chunk_stopped_by_its_channel_gives_back_the_rest_uncounted(store, clock, sites):
    """A channel's stop reaches a chunk as a cancel: the object in flight is reported
    CANCELED and the rest given up as CANCELED, though nobody canceled the transfer. Both go
    back to the queue with their attempt unspent, as a single task stopped by its channel does;
    an object with no retry left then still gets its one attempt."""
    options = TransferOptions(retries=0)
    transfer = await started(store, clock, [chunk(0, 4)], options=options)
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    await store.put_channel(Channel("A", "B", state=ChannelState.STOPPED))

    rows = [*done([0]), (1, ReportedState.CANCELED, 3, None, "canceled", "canceled", False)]
    ending = report(carrier, rows, ended=True, rest=ReportedState.CANCELED)
    await store.record_chunk_results(agent, [ending])

    first, rest = await task_rows(store, transfer.id)
    assert first.state == "DONE"
    assert (rest.state, rest.members, rest.attempts) == ("QUEUED", [1, 2, 3], 0)
    assert [o.object for o in await outcome_rows(store, transfer.id)] == [carrier.chunk.first]
    run = await run_row(store, transfer.id)
    assert (run.done, run.failed, run.canceled) == (1, 0, 0)

    await store.put_channel(Channel("A", "B"))
    [again] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    assert again.attempt == 1
    await store.record_chunk_results(agent, [report(again, done([1, 2, 3]), ended=True)])
    assert (await run_row(store, transfer.id)).done == 4


async def test_a_report_under_another_lease_is_ignored(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 2)])
    agent, other = await chunk_agent(store, "agent-1"), await chunk_agent(store, "agent-2")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)

    stale = report(carrier._replace(lease="0" * 32), done([0, 1]), ended=True)
    assert (await store.record_chunk_results(agent, [stale])).ignored == 2
    assert (await store.record_chunk_results(other, [report(carrier, done([0]))])).ignored == 1
    assert (await run_row(store, transfer.id)).done == 0


async def test_two_servers_lease_and_report_concurrently_and_count_each_object_once(
    store, clock, sites, backend, database_url
):
    if backend != "postgresql":
        pytest.skip("two servers share a PostgreSQL database only")
    transfer = await started(store, clock, [chunk(n, 20) for n in range(0, 400, 20)])
    agents = [await chunk_agent(store, f"agent-{n}") for n in range(4)]
    other = SqlStore(database_url, clock=clock)
    await other.open()
    servers = [store, other, store, other]

    async def work(server: SqlStore, agent: str) -> list[int]:
        leased_ids = []
        while leased := await server.lease_tasks(agent, limit=40, ttl=TTL):
            for task in leased:
                leased_ids.append(task.id)
                ending = report(task, done(range(20)), ended=True)
                # Each report is sent to both servers at once: one applies it.
                await asyncio.gather(
                    store.record_chunk_results(agent, [ending]),
                    other.record_chunk_results(agent, [ending]),
                )
        return leased_ids

    try:
        leased = await asyncio.gather(*(work(s, a) for s, a in zip(servers, agents, strict=True)))
    finally:
        await other.close()

    ids = [task_id for batch in leased for task_id in batch]
    assert len(ids) == len(set(ids)) == 20
    run = await run_row(store, transfer.id)
    assert (run.done, run.bytes) == (400, 4000)
    assert len(await outcome_rows(store, transfer.id)) == 400
