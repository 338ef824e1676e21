"""A tree's expansion stopped between pages (a server killed mid-listing) resumes after the
last page it committed, on SQLite and on PostgreSQL: every object once, and the folders before
that page's end are not listed again."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from pathlib import Path

import pytest
from sqlalchemy import update

from ferry.domain.chunks import PlannedChunk
from ferry.domain.transfers import ListedThrough, Storage, TransferKind
from ferry.engine import trees
from ferry.scheduler.expand import ExpandLoop
from ferry.scheduler.guard import ProtectedPaths
from ferry.scheduler.loop import Wakeups
from ferry.store import tables as t
from ferry.store.sql import SqlStore

from .factories import new_transfer

# 2,400 files in four folders: pages of 1,000 end inside b/ and inside d/.
FOLDERS, FILES = "abcd", 600


@pytest.fixture
async def root(store: SqlStore, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for folder in FOLDERS:
        (root / "tree" / folder).mkdir(parents=True)
        for n in range(FILES):
            (root / "tree" / folder / f"f{n:04}").write_bytes(b"")
    (root / "first").mkdir()
    for n in range(3):
        (root / "first" / f"x{n}").write_bytes(b"x")
    await store.put_storage(Storage("local", root.as_uri()))
    return root


@pytest.fixture
def listed_folders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each folder the walk lists, in order."""
    folders: list[str] = []
    listing = trees._list_folder

    def counted(storage, folder):
        folders.append(Path(folder).name)
        return listing(storage, folder)

    monkeypatch.setattr(trees, "_list_folder", counted)
    return folders


async def started(store: SqlStore, clock, *sources: str) -> str:
    new = new_transfer(
        sources=sources, destination="local:out", kind=TransferKind.TREE, next_run_at=clock.now
    )
    transfer, _created = await store.create_transfer(new)
    await store.claim_due_transfers(clock.now, limit=10)
    return transfer.id


def expander(store: SqlStore) -> ExpandLoop:
    return ExpandLoop(store, Wakeups(), protected=ProtectedPaths([]))


async def stop_after(store: SqlStore, pages: int) -> None:
    """Run the expand loop until it has committed ``pages`` pages, then stop it while it holds
    the next one, listed but not committed (the server killed)."""
    add_tasks, committed, stalled = store.add_tasks, [], asyncio.Event()

    async def observed(transfer, run, planned, **kwargs):
        if len(committed) == pages:
            stalled.set()
            await asyncio.Event().wait()
        committed.append(await add_tasks(transfer, run, planned, **kwargs))
        return committed[-1]

    store.add_tasks = observed
    running = asyncio.create_task(expander(store).run_once())
    try:
        await asyncio.wait_for(stalled.wait(), timeout=30)
    finally:
        running.cancel()
        with suppress(asyncio.CancelledError):
            await running
        store.add_tasks = add_tasks


async def resume(store: SqlStore) -> int:
    """Expand with a new loop to the end; return how many entries it listed."""
    add_tasks, entries = store.add_tasks, []

    async def counted(transfer, run, planned, **kwargs):
        entries.append(sum(p.count if isinstance(p, PlannedChunk) else 1 for p in planned))
        return await add_tasks(transfer, run, planned, **kwargs)

    store.add_tasks = counted
    try:
        await expander(store).run_once()
    finally:
        store.add_tasks = add_tasks
    return sum(entries)


async def destinations(store: SqlStore, transfer_id: str) -> list[str]:
    tasks = await store.outcomes(transfer_id, 1, after=0, limit=10_000)
    return [str(obj.destination) for obj in tasks]


def expected(*sources: str) -> list[str]:
    tree = [f"local:out/{folder}/f{n:04}" for folder in FOLDERS for n in range(FILES)]
    first = [f"local:out/x{n}" for n in range(3)]
    return sorted((first if "local:first" in sources else []) + tree)


@pytest.mark.parametrize(
    ("sources", "pages", "cursor", "skipped"),
    [
        (("local:tree",), 1, ListedThrough(0, "b/f0399"), 1000),
        (("local:first", "local:tree"), 2, ListedThrough(1, "b/f0399"), 1003),
    ],
    ids=["one source", "the second source"],
)
async def test_a_listing_stopped_between_pages_resumes_after_its_last_page(
    store, clock, root, listed_folders, sources, pages, cursor, skipped
) -> None:
    transfer_id = await started(store, clock, *sources)
    await stop_after(store, pages)
    ((_transfer, run),) = await store.runs_to_expand(limit=10)
    assert run.listed == cursor
    assert run.counts.total == skipped
    listed_folders.clear()

    listed = await resume(store)

    assert listed == len(expected(*sources)) - skipped  # nothing listed twice
    assert listed_folders == ["tree", "b", "c", "d"]  # not a/, nor the first source
    assert sorted(await destinations(store, transfer_id)) == expected(*sources)
    run = await store.get_run(transfer_id, 1)
    assert run.expanded
    assert run.counts.total == len(expected(*sources))


async def test_a_run_without_a_cursor_is_listed_whole_again(
    store, clock, root, listed_folders
) -> None:
    """A run whose listing began before the upgrade: its repeated objects are skipped. Made
    before cursors, it was made before objects were numbered too, so it holds no chunk."""
    transfer_id = await started(store, clock, "local:tree")
    async with store.engine.begin() as conn:
        await conn.execute(update(t.runs).values(next_object=None))
    await stop_after(store, 1)
    async with store.engine.begin() as conn:
        await conn.execute(update(t.runs).values(listed_source=None, listed_through=None))
    listed_folders.clear()

    listed = await resume(store)

    assert listed == FILES * len(FOLDERS)
    assert listed_folders == ["tree", "a", "b", "c", "d"]
    assert sorted(await destinations(store, transfer_id)) == expected("local:tree")
    run = await store.get_run(transfer_id, 1)
    assert run.expanded
    assert run.counts.total == FILES * len(FOLDERS)
