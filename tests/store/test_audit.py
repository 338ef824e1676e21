"""The audit trail's hash chain (issue 19, part 5): appended in order, listed by actor and time,
whole when untouched; a record changed or removed afterwards is named by its seq; two stores
appending at once on one database never fork it."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, update

from ferry.store import tables as t
from ferry.store.abc import AuditEntry
from ferry.store.sql import SqlStore
from ferry.store.sql_audit import GENESIS, chain_hash


def entry(actor: str = "admin", action: str = "POST /api/v1/transfers", **extra) -> AuditEntry:
    return AuditEntry(actor, "ADMINISTRATOR", "127.0.0.1", action, **extra)


async def append(store: SqlStore, count: int, actor: str = "admin") -> None:
    for number in range(count):
        await store.append_audit(entry(actor, params={"n": number}, status=201))


def tamper(store: SqlStore, statement) -> None:
    with store.engines[0].begin() as conn:
        conn.execute(statement)


async def test_records_are_chained_in_order_and_verify(fresh_store) -> None:
    first = await fresh_store.append_audit(entry(params={"transfer_id": "t1"}, target="t1"))
    second = await fresh_store.append_audit(entry("alice", status=403))

    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert first.hash == chain_hash(GENESIS, 1, first.at, first.entry)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    check = await fresh_store.verify_audit()
    assert (check.records, check.head, check.first_bad, check.why) == (2, second.hash, None, None)


async def test_an_empty_trail_is_whole(fresh_store) -> None:
    check = await fresh_store.verify_audit()
    assert (check.records, check.head, check.first_bad) == (0, GENESIS, None)


async def test_listing_by_actor_and_time_gives_the_latest_oldest_first(fresh_store, clock) -> None:
    await append(fresh_store, 2, "alice")
    since = clock.advance(minutes=5)
    await append(fresh_store, 3, "bob")
    await append(fresh_store, 1, "alice")

    assert [r.seq for r in await fresh_store.list_audit()] == [1, 2, 3, 4, 5, 6]
    assert [r.seq for r in await fresh_store.list_audit(limit=2)] == [5, 6]
    assert [r.seq for r in await fresh_store.list_audit(actor="alice")] == [1, 2, 6]
    assert [r.seq for r in await fresh_store.list_audit(since=since)] == [3, 4, 5, 6]
    listed = await fresh_store.list_audit(actor="bob", limit=1)
    assert [(r.seq, r.entry.params) for r in listed] == [(5, {"n": 2})]


async def test_a_changed_record_is_named(fresh_store) -> None:
    await append(fresh_store, 5)
    tamper(fresh_store, update(t.audit).where(t.audit.c.seq == 3).values(actor="mallory"))

    check = await fresh_store.verify_audit()
    assert (check.records, check.first_bad) == (2, 3)
    assert check.why == "record 3 was changed: its hash does not match its contents"


async def test_a_changed_record_with_its_hash_rewritten_breaks_the_next_link(fresh_store) -> None:
    await append(fresh_store, 4)
    [second] = [r for r in await fresh_store.list_audit() if r.seq == 2]
    forged = AuditEntry("mallory", "ADMINISTRATOR", "127.0.0.1", second.entry.action, {}, 201)
    rehashed = chain_hash(second.prev_hash, 2, second.at, forged)
    tamper(
        fresh_store,
        update(t.audit).where(t.audit.c.seq == 2).values(actor="mallory", params={}, hash=rehashed),
    )

    check = await fresh_store.verify_audit()
    assert (check.first_bad, check.why) == (
        3,
        "record 3 does not follow record 2: one was changed or removed",
    )


async def test_a_removed_record_is_named(fresh_store) -> None:
    await append(fresh_store, 5)
    tamper(fresh_store, delete(t.audit).where(t.audit.c.seq == 4))

    check = await fresh_store.verify_audit()
    assert (check.records, check.first_bad) == (3, 4)
    assert check.why == "record 4 is missing: removed (the next one is 5)"


async def test_removing_the_first_record_shows(fresh_store) -> None:
    await append(fresh_store, 2)
    tamper(fresh_store, delete(t.audit).where(t.audit.c.seq == 1))

    assert (await fresh_store.verify_audit()).first_bad == 1


async def test_the_chain_is_walked_beyond_one_batch(fresh_store, monkeypatch) -> None:
    monkeypatch.setattr("ferry.store.sql_audit.VERIFY_BATCH", 3)
    await append(fresh_store, 7)
    assert (await fresh_store.verify_audit()).records == 7
    tamper(fresh_store, update(t.audit).where(t.audit.c.seq == 6).values(status=200))
    assert (await fresh_store.verify_audit()).first_bad == 6


async def test_two_stores_appending_at_once_never_fork_the_chain(
    fresh_store, database_url, clock
) -> None:
    other = SqlStore(database_url, clock=clock)
    await other.open()
    try:
        await asyncio.gather(append(fresh_store, 25, "one"), append(other, 25, "two"))
    finally:
        await other.close()

    check = await fresh_store.verify_audit()
    assert (check.records, check.first_bad) == (50, None)
    actors = [r.entry.actor for r in await fresh_store.list_audit()]
    assert sorted(actors) == ["one"] * 25 + ["two"] * 25
