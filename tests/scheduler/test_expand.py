"""The expand loop against a real SQLite store and real folders: trees become tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState, TransferStatus
from ferry.domain.transfers import Storage, TransferKind, TransferSpec, run_progress
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
    root = tmp_path / "root"
    root.mkdir()
    await store.put_storage(Storage("local", root.as_uri()))
    await store.put_storage(Storage("broken", "nosuchprotocol://anywhere"))
    yield store
    await store.close()


async def started(store: SqlStore, source: str, destination: str = "local:out") -> str:
    spec = TransferSpec(TransferKind.TREE, (parse_location(source),), parse_location(destination))
    new = NewTransfer("default", "admin", spec, {"kind": "direct"}, datetime.now(UTC))
    transfer, _ = await store.create_transfer(new)
    await store.claim_due_transfers(datetime.now(UTC), limit=10)
    return transfer.id


async def finish(store: SqlStore, loop: ExpandLoop) -> None:
    await loop.run_once()
    await store.finish_runs(datetime.now(UTC))


def expander(store: SqlStore, protected: list[Path] | None = None) -> ExpandLoop:
    return ExpandLoop(store, Wakeups(), protected=ProtectedPaths(protected or []))


async def test_a_run_that_cannot_be_listed_fails_without_blocking_others(store, tmp_path) -> None:
    (tmp_path / "root" / "tree").mkdir()
    (tmp_path / "root" / "tree" / "f").write_text("f")
    broken = await started(store, "broken:tree")
    fine = await started(store, "local:tree")

    await finish(store, expander(store))

    failed = await store.get_transfer(broken)
    assert failed.status is TransferStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("listing failed")
    run = await store.get_run(fine, 1)
    assert run.expanded
    assert run.counts.total == 1


async def test_the_protected_folder_is_neither_listed_nor_written(store, tmp_path) -> None:
    root = tmp_path / "root"
    (root / "tree" / ".ferry").mkdir(parents=True)
    (root / "tree" / ".ferry" / "ferry.db").write_text("db")
    (root / "tree" / "f").write_text("f")
    (root / "backup" / ".ferry").mkdir(parents=True)
    (root / "backup" / ".ferry" / "admin.token").write_text("old")
    listed = await started(store, "local:tree")
    restored = await started(store, "local:backup", "local:")

    await expander(store, [root / "tree" / ".ferry", root / ".ferry"]).run_once()

    tasks = await store.outcomes(listed, 1, after=0, limit=100)
    assert [str(obj.source) for obj in tasks] == ["local:tree/f"]
    (refused,) = await store.outcomes(restored, 1, after=0, limit=100)
    assert refused.state is TaskState.FAILED
    assert (
        refused.error == "local:.ferry/admin.token is inside the server's data directory: refused"
    )


async def test_a_new_run_is_listed_before_the_next_page_of_a_big_tree(store, tmp_path) -> None:
    for folder, files in (("big", 2500), ("small", 3)):
        (tmp_path / "root" / folder).mkdir()
        for n in range(files):
            (tmp_path / "root" / folder / f"f{n}").write_text("x")
    big = await started(store, "local:big", "local:b")
    pages: list[str] = []
    add_tasks = store.add_tasks
    small: list[str] = []

    async def observed(transfer, run, planned, **kwargs):
        pages.append(transfer.id)
        if not small:  # the small tree is submitted while the big one's first page lands
            small.append(await started(store, "local:small", "local:s"))
        return await add_tasks(transfer, run, planned, **kwargs)

    store.add_tasks = observed
    await expander(store).run_once()

    assert pages == [big, small[0], big, big]


async def test_sizes_a_storage_does_not_give_stay_unknown_in_the_run(
    store, tmp_path, monkeypatch
) -> None:
    """An HTTP index gives no sizes: its objects were counted as 0 bytes, which looks small."""
    listing = trees._list_folder

    def unsized(storage, folder):
        return [{**info, "size": None} for info in listing(storage, folder)]

    monkeypatch.setattr(trees, "_list_folder", unsized)
    (tmp_path / "root" / "tree").mkdir()
    (tmp_path / "root" / "tree" / "f").write_text("12345")
    listed = await started(store, "local:tree")

    await expander(store).run_once()

    (task,) = await store.outcomes(listed, 1, after=0, limit=10)
    assert task.size is None
    run = await store.get_run(listed, 1)
    assert run.counts.total == 1
    assert run_progress(run, 0, datetime.now(UTC)).bytes_total is None
