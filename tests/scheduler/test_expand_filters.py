"""Filters and skipped source errors in the expand loop, against a real SQLite store and real
folders: what the filters leave out is counted, never made a task; a source that cannot be
read is SKIPPED when asked."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferry.domain.filters import TreeFilter
from ferry.domain.locations import parse_location
from ferry.domain.schedules import Schedule, ScheduleKind, Unit
from ferry.domain.states import TaskState
from ferry.domain.transfers import Storage, TransferKind, TransferOptions, TransferSpec
from ferry.engine import trees
from ferry.scheduler.expand import ExpandLoop
from ferry.scheduler.guard import ProtectedPaths
from ferry.scheduler.loop import Wakeups
from ferry.store.abc import NewTransfer
from ferry.store.sql import SqlStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'ferry.db'}")
    await store.open()
    await store.bootstrap()
    (tmp_path / "root").mkdir()
    await store.put_storage(Storage("local", (tmp_path / "root").as_uri()))
    yield store
    await store.close()


async def started(store: SqlStore, source: str, options: TransferOptions) -> str:
    spec = TransferSpec(
        TransferKind.TREE, (parse_location(source),), parse_location("local:out"), options
    )
    new = NewTransfer("default", "admin", spec, {"kind": "direct"}, datetime.now(UTC))
    transfer, _ = await store.create_transfer(new)
    await store.claim_due_transfers(datetime.now(UTC), limit=10)
    return transfer.id


def expander(store: SqlStore) -> ExpandLoop:
    return ExpandLoop(store, Wakeups(), protected=ProtectedPaths([]))


async def objects(store: SqlStore, transfer_id: str) -> dict[str, tuple[TaskState, str | None]]:
    found = await store.outcomes(transfer_id, 1, after=0, limit=10_000)
    return {task.source.path: (task.state, task.error) for task in found}


def tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


async def test_what_the_filters_leave_out_is_counted_and_never_a_task(store, tmp_path) -> None:
    tree(
        tmp_path / "root" / "t",
        {
            "a.csv": b"1",
            "b.tmp": b"1",
            "big.csv": b"x" * 100,
            "old.csv": b"1",
            "sub/c.csv": b"1",
            "cache/d.csv": b"1",
            "notes.txt": b"1",
        },
    )
    os.utime(tmp_path / "root" / "t" / "old.csv", (0, 86400))  # 1970
    rules = TreeFilter.build(
        include=["*.csv"], rules=["- cache/"], max_size=50, max_age="30d"
    )  # "- cache/" comes after the include: cache/d.csv is taken by "*.csv" first
    listed = await started(store, "local:t", TransferOptions(filters=rules))

    await expander(store).run_once()

    assert sorted(await objects(store, listed)) == ["t/a.csv", "t/cache/d.csv", "t/sub/c.csv"]
    run = await store.get_run(listed, 1)
    assert (run.counts.total, run.counts.filtered) == (3, 4)
    assert run.size_total == 3


async def test_a_listing_begun_again_counts_each_filtered_entry_once(store, tmp_path) -> None:
    tree(
        tmp_path / "root" / "t", {f"f{n:04}.{'tmp' if n % 2 else 'dat'}": b"x" for n in range(2500)}
    )
    listed = await started(
        store, "local:t", TransferOptions(filters=TreeFilter.build(exclude=["*.tmp"]))
    )
    add_tasks, pages = store.add_tasks, []

    async def stopped_at_the_second_page(transfer, run, planned, **kwargs):
        pages.append(kwargs.get("filtered"))
        if len(pages) == 2:
            raise asyncio.CancelledError  # the server stops mid-listing
        return await add_tasks(transfer, run, planned, **kwargs)

    store.add_tasks = stopped_at_the_second_page
    with pytest.raises(asyncio.CancelledError):
        await expander(store).run_once()
    assert (await store.get_run(listed, 1)).counts.filtered == 500
    store.add_tasks = add_tasks

    await expander(store).run_once()

    run = await store.get_run(listed, 1)
    assert (run.counts.total, run.counts.filtered) == (1250, 1250)


async def test_a_folder_denied_is_skipped_when_asked_and_fails_otherwise(
    store, tmp_path, monkeypatch
) -> None:
    """(Tests run as root, whom no mode denies: the listing is refused here as the disk
    would refuse it; tests/e2e/test_tree_filters.py denies it for real.)"""
    listing = trees._list_folder

    def refused(storage, folder):
        if folder.rstrip("/").endswith("locked"):
            raise PermissionError(13, "Permission denied", folder)
        return listing(storage, folder)

    monkeypatch.setattr(trees, "_list_folder", refused)
    tree(tmp_path / "root" / "t", {"a.txt": b"1", "locked/b.txt": b"1"})
    skipping = await started(store, "local:t", TransferOptions(skip_source_errors=True))
    failing = await started(store, "local:t", TransferOptions())
    await expander(store).run_once()

    state, error = (await objects(store, skipping))["t/locked"]
    assert state is TaskState.SKIPPED
    assert error is not None
    assert "Permission denied" in error
    assert (await objects(store, failing))["t/locked"][0] is TaskState.FAILED


async def test_a_missing_tree_is_skipped_when_asked(store, tmp_path) -> None:
    skipping = await started(store, "local:nothing", TransferOptions(skip_source_errors=True))
    failing = await started(store, "local:nothing", TransferOptions())

    await expander(store).run_once()

    assert await objects(store, skipping) == {
        "nothing": (TaskState.SKIPPED, "not found: local:nothing")
    }
    assert (await objects(store, failing))["nothing"][0] is TaskState.FAILED


async def test_each_run_of_a_periodic_transfer_applies_the_filters_from_its_own_start(
    store, tmp_path
) -> None:
    """--min-age 1h: a file written now is left out by the run of now and taken by the run
    two hours later, measured from that run's start, not the submission's."""
    tree(tmp_path / "root" / "t", {"new.dat": b"n", "a.tmp": b"a"})
    rules = TreeFilter.build(exclude=["*.tmp"], min_age="1h")
    now = datetime.now(UTC)
    schedule = Schedule(ScheduleKind.EVERY, unit=Unit.HOUR, start=now)
    spec = TransferSpec(
        TransferKind.TREE,
        (parse_location("local:t"),),
        parse_location("local:out"),
        TransferOptions(filters=rules),
    )
    new = NewTransfer("default", "admin", spec, schedule.to_json(), now)
    transfer, _ = await store.create_transfer(new)

    await store.claim_due_transfers(now, limit=10)
    await expander(store).run_once()
    [first] = await store.finish_runs(now)
    later = now + timedelta(hours=2)
    await store.claim_due_transfers(later, limit=10)
    await expander(store).run_once()

    assert (first.counts.total, first.counts.filtered) == (0, 2)
    second = await store.get_run(transfer.id, 2)
    assert (second.counts.total, second.counts.filtered) == (1, 1)
    assert [
        task.source.path for task in await store.outcomes(transfer.id, 2, after=0, limit=9)
    ] == ["t/new.dat"]
