"""Carriers of small objects inserted and leased, on SQLite and PostgreSQL: objects numbered in
listing order, a carrier counting its objects against a lease's limit and one slot against its
channel, and none for an agent that does not take chunks (docs/small-files.md, §3)."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import update

from ferry.domain.channels import Channel
from ferry.domain.states import TaskState
from ferry.domain.transfers import Scope, Storage
from ferry.store import tables as t
from ferry.store.abc import TaskResult

from .chunked import TTL, chunk, chunk_agent, done, report, run_row, single, started, task_rows


@pytest.fixture
async def sites(store, tmp_path) -> None:
    """Storage ``src`` at site A, ``dst`` at B."""
    for name, site in (("src", "A"), ("dst", "B")):
        await store.put_storage(Storage(name, (tmp_path / name).as_uri(), site=site))


async def test_objects_are_numbered_in_listing_order_across_pages(store, clock, sites):
    first = [single("a"), chunk(1, 3), single("e")]
    second = [chunk(0, 2, prefix="p"), single("h")]
    transfer = await started(store, clock, first, second)

    rows = await task_rows(store, transfer.id)
    assert [(r.object, r.objects, r.origin, r.members) for r in rows] == [
        (1, 1, None, None),  # the single tasks come first in the page's insert
        (5, 1, None, None),
        (2, 3, 2, None),
        (8, 1, None, None),
        (6, 2, 6, None),
    ]
    carrier = rows[2]
    assert (carrier.source, carrier.destination, carrier.size) == ("src:in", "dst:out", 30)
    run = await run_row(store, transfer.id)
    assert (run.next_object, run.total, run.size_total) == (9, 8, 80)


async def test_a_run_made_before_numbering_takes_tasks_as_before_and_no_chunk(store, clock):
    transfer = await started(store, clock)
    await store._write(
        lambda conn: conn.execute(
            update(t.runs).where(t.runs.c.transfer_id == transfer.id).values(next_object=None)
        )
    )
    await store.add_tasks(transfer, 1, [single("a")])
    with pytest.raises(ValueError, match="numbered"):
        await store.add_tasks(transfer, 1, [chunk(0, 2)])

    [row] = await task_rows(store, transfer.id)
    assert row.object is None
    assert (await run_row(store, transfer.id)).total == 1


async def test_a_lease_counts_objects_against_its_limit(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 4), chunk(4, 4), chunk(8, 4)])
    agent = await chunk_agent(store, "agent-1")

    leased = await store.lease_tasks(agent, limit=10, ttl=TTL)

    assert len(leased) == 2  # 8 objects: a third carrier would make 12
    first = leased[0]
    assert first.chunk is not None
    assert (first.chunk.first, first.chunk.only) == (1, None)
    assert orjson.loads(first.chunk.objects) == [[f"c{i}", 10] for i in range(4)]
    assert (str(first.source), str(first.destination), first.size) == ("src:in", "dst:out", 40)
    assert first.transfer_id == transfer.id
    # A carrier larger than the limit is leased alone rather than never.
    assert len(await store.lease_tasks(agent, limit=1, ttl=TTL)) == 1


async def test_an_agent_of_protocol_1_is_leased_single_tasks_only(store, clock, sites):
    await started(store, clock, [chunk(0, 4), single("x")])
    old = await chunk_agent(store, "old", protocol=1)
    new = await chunk_agent(store, "new")

    [task] = await store.lease_tasks(old, limit=100, ttl=TTL)
    assert task.chunk is None
    assert await store.lease_tasks(old, limit=100, ttl=TTL) == []
    [carrier] = await store.lease_tasks(new, limit=100, ttl=TTL)
    assert carrier.chunk is not None


async def test_a_carrier_takes_one_slot_of_max_active_across_agents(store, clock, sites):
    await store.put_channel(Channel("A", "B", max_active=1))
    await started(store, clock, [chunk(0, 50), chunk(50, 50), chunk(100, 50)])
    one, two = await chunk_agent(store, "agent-1"), await chunk_agent(store, "agent-2")

    [held] = await store.lease_tasks(one, limit=1000, ttl=TTL)
    assert await store.lease_tasks(two, limit=1000, ttl=TTL) == []
    assert await store.active_by_channel() == {("A", "B"): 1}

    await store.record_chunk_results(one, [report(held, [], ended=True, rest=None)])
    assert len(await store.lease_tasks(two, limit=1000, ttl=TTL)) == 1
    assert await store.lease_tasks(one, limit=1000, ttl=TTL) == []


async def test_two_scopes_both_progress_in_every_lease_window(store, clock, sites):
    """10,000 small objects in chunks of 500 against 100 single large tasks, scopes 1:1:
    every lease window gives each scope its turns."""
    await store.put_scope(Scope("small", 1))
    await store.put_scope(Scope("large", 1))
    await store.put_channel(Channel("A", "B", max_active=4))
    pages = [[chunk(n, 500) for n in range(0, 1000, 500)] for _ in range(10)]
    small = await started(store, clock, *pages, scope="small")
    large = await started(
        store, clock, [single(f"big{n}", 8 << 20) for n in range(100)], scope="large"
    )
    agent = await chunk_agent(store, "agent-1")

    for _window in range(10):
        leased = await store.lease_tasks(agent, limit=2000, ttl=TTL)
        by_transfer = {task.transfer_id for task in leased}
        assert by_transfer == {small.id, large.id}
        for task in leased:
            if task.chunk is not None:
                await store.record_chunk_results(
                    agent, [report(task, done(range(500)), ended=True)]
                )
            else:
                result = TaskResult(task.id, task.lease, TaskState.DONE, bytes=task.size or 0)
                await store.record_results(agent, [result])
    assert (await run_row(store, small.id)).done == 10 * 2 * 500


async def test_a_scope_of_small_carriers_takes_turns_with_one_of_large_carriers(
    store, clock, sites
):
    """A lease stops at the first carrier that would pass its limit, and a scope whose carrier
    was not leased keeps its turn: beta's carriers of 2 objects alternate with alpha's of 64,
    whatever the limit (a scope charged for a carrier cut off the lease lost every turn)."""
    await store.put_scope(Scope("alpha", 1))
    await store.put_scope(Scope("beta", 1))
    alpha = await started(store, clock, [chunk(n, 64) for n in range(0, 640, 64)], scope="alpha")
    await started(store, clock, [chunk(n, 2, prefix="b") for n in range(0, 10, 2)], scope="beta")
    agent = await chunk_agent(store, "agent-1")

    turns = []
    for _lease in range(10):
        leased = await store.lease_tasks(agent, limit=64, ttl=TTL)
        turns.append(["alpha" if task.transfer_id == alpha.id else "beta" for task in leased])

    assert turns == [["alpha"], ["beta"]] * 5
