"""A chunk's object that fails for good is named in its FAILED outcome (migration 0016), on
SQLite and PostgreSQL: written by a report and by an expiry out of attempts; moved objects'
rows stay unnamed."""

from __future__ import annotations

import pytest

from ferry.domain.transfers import Storage, TransferOptions

from .chunked import TTL, chunk, chunk_agent, done, failed, outcome_rows, report, started


@pytest.fixture
async def sites(store, tmp_path) -> None:
    for name in ("src", "dst"):
        await store.put_storage(Storage(name, (tmp_path / name).as_uri()))


def named(rows):
    return [(o.object, o.state, o.path, o.size) for o in rows]


async def test_a_reported_failure_names_its_object_and_a_moved_one_does_not(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 3)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)

    rows = [*done([0, 2]), failed(1, "permission denied", retryable=False)]
    await store.record_chunk_results(agent, [report(carrier, rows, ended=True)])

    assert named(await outcome_rows(store, transfer.id)) == [
        (1, "DONE", None, None),
        (2, "FAILED", "c1", 10),
        (3, "DONE", None, None),
    ]


async def test_objects_failed_by_an_expiry_are_named(store, clock, sites):
    options = TransferOptions(retries=0)
    transfer = await started(store, clock, [chunk(0, 3)], options=options)
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    await store.record_chunk_results(agent, [report(carrier, done([1]))])

    await store.reap_expired_leases(clock.advance(seconds=31))

    assert named(await outcome_rows(store, transfer.id)) == [
        (1, "FAILED", "c0", 10),
        (2, "DONE", None, None),
        (3, "FAILED", "c2", 10),
    ]
