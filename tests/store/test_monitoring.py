"""Reading transfers for the API: one with its latest run and active bytes, pages with their
runs, a submission answered without reading it back."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ferry.domain.states import RunStatus, TransferStatus
from ferry.domain.transfers import TransferKind, TransferOptions
from ferry.errors import TransferNotFound
from ferry.store.abc import TransferFilter
from ferry.store.sql import SqlStore

from .factories import new_transfer

TTL = timedelta(seconds=30)


async def test_a_transfer_not_yet_run_has_no_run(store, submit):
    transfer = await submit()
    seen = await store.get_transfer_with_run(transfer.id)
    assert (seen.transfer, seen.run, seen.active_bytes) == (transfer, None, 0)


async def test_an_unknown_transfer_is_not_found(store):
    with pytest.raises(TransferNotFound):
        await store.get_transfer_with_run("no-such-transfer")


async def test_a_running_transfer_comes_with_its_run_and_the_bytes_moving(store, start, agent_id):
    started = await start(tasks=3)
    leased = await store.lease_tasks(agent_id, limit=2, ttl=TTL)
    held = [task.id for task in leased]
    await store.record_heartbeat(agent_id, {}, TTL, held, {held[0]: 400, held[1]: 25})
    seen = await store.get_transfer_with_run(started.transfer.id)
    assert seen.transfer == await store.get_transfer(started.transfer.id)
    assert seen.run == (await store.latest_runs([seen.transfer]))[seen.transfer.id]
    assert seen.run.status is RunStatus.ONGOING
    assert seen.active_bytes == await store.active_bytes(started.transfer.id, 1) == 425


async def test_a_page_carries_the_latest_run_of_each_transfer(store, start, submit, clock):
    started = await start(tasks=1)
    clock.advance(seconds=1)
    waiting = await submit()
    page = await store.list_transfers(limit=10, cursor=None)
    assert [t.id for t in page.items] == [waiting.id, started.transfer.id]
    assert page.runs == await store.latest_runs(page.items)
    assert set(page.runs) == {started.transfer.id}


async def test_a_filtered_page_carries_runs_too(store, start):
    started = await start(tasks=1)
    where = TransferFilter(status=TransferStatus.ONGOING, scope="default")
    page = await store.list_transfers(limit=10, cursor=None, where=where)
    assert [t.id for t in page.items] == [started.transfer.id]
    assert page.runs[started.transfer.id].status is RunStatus.ONGOING


async def test_a_new_transfer_is_returned_as_it_was_stored(store, clock):
    # A next run given in another time zone, labels and a tree: what reading back gives.
    due = datetime(2030, 1, 1, 14, 30, tzinfo=ZoneInfo("Europe/Rome"))
    new = new_transfer(
        sources=("src:in",),
        kind=TransferKind.TREE,
        options=TransferOptions(labels=("b", "a")),
        next_run_at=due,
        submission_id="s-1",
    )
    created, fresh = await store.create_transfer(new)
    assert fresh
    assert created == await store.get_transfer(created.id)
    assert created.next_run_at is not None
    assert created.next_run_at.tzinfo is UTC
    again, fresh = await store.create_transfer(new)
    assert (again, fresh) == (created, False)


async def test_filtered_pages_are_read_in_index_order(tmp_path):
    """Newest first by status, scope or both without sorting the matches (SQLite's plan)."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await store.open()
    await store.close()
    order = "ORDER BY created_at DESC, id DESC LIMIT 51"
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        for where in ("status = 'ONGOING'", "scope = 'a'", "status = 'ONGOING' AND scope = 'a'"):
            plan = conn.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM transfers WHERE {where} {order}"
            ).fetchall()
            assert "TEMP B-TREE" not in str(plan), (where, plan)


async def test_ids_are_found_by_their_start_among_the_scopes_given(store, submit):
    first, second = await submit(), await submit()

    both = await store.transfer_ids_starting("", scopes=None, limit=10)
    assert both == sorted([first.id, second.id])
    assert await store.transfer_ids_starting(first.id[:8], scopes=None, limit=10) == [first.id]
    assert await store.transfer_ids_starting(first.id[:8], scopes=["default"], limit=1) == [
        first.id
    ]
    assert await store.transfer_ids_starting(first.id[:8], scopes=["physics"], limit=10) == []
    assert await store.transfer_ids_starting("%", scopes=None, limit=10) == []  # not a wildcard
