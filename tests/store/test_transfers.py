"""Transfers in the SQL store, on a real SQLite file: submitted, listed in pages, filtered,
submitted again; the due loop's claim of standby transfers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ferry.domain.states import RunStatus, TransferStatus
from ferry.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    TransferNotFound,
)

from .factories import new_transfer


async def test_new_transfer_waits_in_standby(store, submit, clock):
    transfer = await submit()
    assert transfer.status is TransferStatus.STANDBY
    assert (transfer.runs, transfer.next_run_at, transfer.error) == (0, clock.now, None)
    assert await store.get_transfer(transfer.id) == transfer


async def test_unknown_transfer_is_not_found(store):
    with pytest.raises(TransferNotFound):
        await store.get_transfer("00000000-0000-0000-0000-000000000000")


async def test_transfers_are_listed_newest_first_in_pages(store, submit, clock):
    ids = []
    for _ in range(5):
        ids.append((await submit()).id)
        clock.advance(seconds=1)
    seen, cursor, sizes = [], None, []
    while True:
        page = await store.list_transfers(status=None, kind=None, limit=2, cursor=cursor)
        seen += [t.id for t in page.items]
        sizes.append(len(page.items))
        if (cursor := page.next_cursor) is None:
            break
    assert seen == ids[::-1]
    assert sizes == [2, 2, 1]


async def test_pages_split_transfers_created_at_the_same_instant(store, submit):
    ids = {(await submit()).id for _ in range(5)}
    first = await store.list_transfers(status=None, kind=None, limit=3, cursor=None)
    rest = await store.list_transfers(status=None, kind=None, limit=3, cursor=first.next_cursor)
    listed = [t.id for t in first.items + rest.items]
    assert sorted(listed) == sorted(ids)
    assert rest.next_cursor is None


async def test_transfers_are_filtered_by_status_and_kind(store, submit):
    kept = await submit()
    await store.cancel_transfer((await submit()).id)
    page = await store.list_transfers(
        status=TransferStatus.STANDBY, kind="file", limit=10, cursor=None
    )
    assert [t.id for t in page.items] == [kept.id]
    trees = await store.list_transfers(status=None, kind="tree", limit=10, cursor=None)
    assert trees.items == []


async def test_a_malformed_cursor_is_refused(store):
    with pytest.raises(InvalidRequest, match="cursor"):
        await store.list_transfers(status=None, kind=None, limit=2, cursor="!!not-base64")


async def test_resubmission_with_the_same_spec_returns_the_same_transfer(store, clock):
    first, created = await store.create_transfer(
        new_transfer(submission_id="k", next_run_at=clock.now)
    )
    again, created_again = await store.create_transfer(
        new_transfer(submission_id="k", next_run_at=clock.now)
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id


async def test_resubmission_with_another_spec_conflicts(store, clock):
    await store.create_transfer(new_transfer(submission_id="k", next_run_at=clock.now))
    with pytest.raises(Conflict, match="'k'"):
        await store.create_transfer(
            new_transfer(sources=("src:other",), submission_id="k", next_run_at=clock.now)
        )


async def test_transfers_without_submission_id_are_all_created(store, clock):
    a, _ = await store.create_transfer(new_transfer(next_run_at=clock.now))
    b, created = await store.create_transfer(new_transfer(next_run_at=clock.now))
    assert created
    assert a.id != b.id


async def test_claim_takes_only_due_standby_transfers_and_opens_run_one(store, submit, clock):
    due = await submit()
    later = await submit(next_run_at=clock.now + timedelta(hours=1))
    await store.cancel_transfer((await submit()).id)
    [run] = await store.claim_due_transfers(clock.now, limit=10)
    assert (run.transfer_id, run.number, run.status) == (due.id, 1, RunStatus.ONGOING)
    assert await store.get_run(due.id, 1) == run
    claimed = await store.get_transfer(due.id)
    assert (claimed.status, claimed.runs, claimed.next_run_at) == (TransferStatus.ONGOING, 1, None)
    assert (await store.get_transfer(later.id)).status is TransferStatus.STANDBY


async def test_a_claimed_transfer_is_not_claimed_again(store, submit, clock):
    await submit()
    assert len(await store.claim_due_transfers(clock.now, limit=10)) == 1
    assert await store.claim_due_transfers(clock.now, limit=10) == []


async def test_claim_respects_the_limit_earliest_first(store, submit, clock):
    late = await submit(next_run_at=clock.now - timedelta(minutes=1))
    early = await submit(next_run_at=clock.now - timedelta(minutes=2))
    [run] = await store.claim_due_transfers(clock.now, limit=1)
    assert run.transfer_id == early.id
    assert (await store.get_transfer(late.id)).status is TransferStatus.STANDBY


async def test_next_due_at_is_the_earliest_standby(store, submit, clock):
    assert await store.next_due_at() is None
    await submit(next_run_at=clock.now + timedelta(hours=2))
    await submit(next_run_at=clock.now + timedelta(hours=1))
    assert await store.next_due_at() == clock.now + timedelta(hours=1)


async def test_unknown_run_is_not_found(store, submit):
    transfer = await submit()
    with pytest.raises(NotFound):
        await store.get_run(transfer.id, 1)
