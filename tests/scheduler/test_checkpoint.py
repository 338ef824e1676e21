"""The checkpoint loop writes SQLite's journal back into the database file, beside the writes."""

from __future__ import annotations

from pathlib import Path

from ferry.domain.transfers import Storage
from ferry.scheduler.checkpoint import CheckpointLoop
from ferry.scheduler.loop import Wakeups
from ferry.store.sql import SqlStore


async def test_what_was_journaled_reaches_the_database_file_at_the_next_pass(
    store: SqlStore, tmp_path: Path
) -> None:
    database = tmp_path / "ferry.db"
    for n in range(300):  # well under the automatic checkpoint's size: it stays journaled
        await store.put_storage(Storage(f"s{n}", f"file:///data/{n}", options={"x": "x" * 2000}))
    before = database.stat().st_size

    await CheckpointLoop(store, Wakeups()).run_once()

    assert database.stat().st_size > before + 300 * 2000


async def test_a_checkpoint_waits_for_no_open_reader(store: SqlStore) -> None:
    await store.put_storage(Storage("one", "file:///data"))
    async with store.engine.connect() as reader:  # a reader holding its snapshot
        await reader.exec_driver_sql("BEGIN")
        await reader.exec_driver_sql("SELECT count(*) FROM storages")
        await CheckpointLoop(store, Wakeups()).run_once()  # returns: PASSIVE does not wait
        await reader.exec_driver_sql("COMMIT")
