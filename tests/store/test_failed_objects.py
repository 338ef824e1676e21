"""A chunk's object that fails for good is named in its FAILED outcome (migration 0016), on
SQLite and PostgreSQL: written by a report and by an expiry out of attempts, and read by
``--status FAILED`` and the run's error without its chunk list; moved objects' rows stay
unnamed."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, update

from ferry.domain.states import TaskState
from ferry.domain.transfers import Storage, TransferOptions
from ferry.store import tables as t

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


async def test_failed_objects_are_shown_from_their_outcome_without_their_list(store, clock, sites):
    transfer = await started(store, clock, [chunk(0, 3)])
    agent = await chunk_agent(store, "agent-1")
    [carrier] = await store.lease_tasks(agent, limit=100, ttl=TTL)
    rows = [*done([0]), failed(1, "denied", retryable=False), failed(2, "gone", retryable=False)]
    await store.record_chunk_results(agent, [report(carrier, rows, ended=True)])

    def forget_the_list(conn: Connection) -> None:  # no reader of a failure may need it
        conn.execute(update(t.chunks).values(objects="[]"))

    await store._write(forget_the_list)

    failures = await store.outcomes(transfer.id, 1, after=0, limit=10, state=TaskState.FAILED)
    assert [(o.number, str(o.source), str(o.destination), o.size, o.error) for o in failures] == [
        (2, "src:in/c1", "dst:out/c1", 10, "denied"),
        (3, "src:in/c2", "dst:out/c2", 10, "gone"),
    ]
    [finished] = await store.finish_runs(clock.now)
    assert finished.error == "2 of 3 objects failed: src:in/c1: denied"
