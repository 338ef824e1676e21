"""Store-level cost of a small object travelling in a chunk: insert, lease and report.

    PYTHONPATH=src python bench/chunk_store.py [objects] [rounds]

A real SqlStore on a scratch SQLite file: a run's objects inserted as chunks of 500 (pages of
1,000, as a listing gives them), leased 1,000 objects at a time by an agent that takes chunks,
and each carrier reported in two reports of 250 outcomes, the second ending it. Prints µs per
object of each phase, best of ``rounds``, as the store's callers see them (the writer thread's
transaction and the hand-off to it), and SQLite's own share of them: the statements of the
last round run again through ``sqlite3`` alone (``sqlite_replay``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scores import Goal, Result
from sqlite_replay import Recorder, replay, snapshot

from ferry.api.protocol import PROTOCOL, ChunkReport, ReportedState
from ferry.domain.chunks import PlannedChunk
from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer
from ferry.store.sql import SqlStore

CHUNK = 500
PAGE = 1000
TTL = timedelta(minutes=5)
# A chunk's two reports, as the server reads them: 250 DONE outcomes each.
HALVES: list[list[Any]] = [
    [(i, ReportedState.DONE, 4096, None, None, None, False) for i in range(start, start + 250)]
    for start in (0, 250)
]


def pages(objects: int) -> list[list[PlannedChunk]]:
    source, destination = parse_location("src:in"), parse_location("dst:out")
    made = []
    for start in range(0, objects, PAGE):
        page = []
        for first in range(0, min(PAGE, objects - start), CHUNK):
            names = tuple((f"d{start}/f{first + i:04}", 4096) for i in range(CHUNK))
            page.append(PlannedChunk(source, destination, first, names))
        made.append(page)
    return made


async def one_round(folder: Path, objects: int) -> tuple[list[float], list[float]]:
    """Seconds of each phase (insert, lease, report) through the store, then through
    ``sqlite3`` alone."""
    store = SqlStore(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await store.open()
    try:
        await store.bootstrap()
        now = datetime.now(UTC)
        spec = TransferSpec(
            TransferKind.TREE,
            (parse_location("src:in"),),
            parse_location("dst:out"),
            TransferOptions(),
        )
        transfer, _ = await store.create_transfer(NewTransfer("default", "admin", spec, {}, now))
        await store.claim_due_transfers(now + timedelta(seconds=1), 10)
        transfer = await store.get_transfer(transfer.id)
        secret = await store.issue_agent_secret("bench", TTL)
        agent, _token = await store.register_agent(
            secret=secret,
            principal=None,
            name="bench",
            host="h",
            capabilities={"protocol": PROTOCOL},
        )
        made = pages(objects)
        before = snapshot(folder / "bench.db", folder / "before")
        recorder = Recorder(store.engines)
        began = time.perf_counter()
        with recorder.recording("insert"):
            for page in made:
                await store.add_tasks(transfer, 1, page)
        inserted = time.perf_counter() - began
        leasing = reporting = 0.0
        while True:
            began = time.perf_counter()
            with recorder.recording("lease"):
                leased = await store.lease_tasks(agent.id, limit=PAGE, ttl=TTL)
            leasing += time.perf_counter() - began
            if not leased:
                break
            reports = [
                ChunkReport(task=task.id, lease=task.lease, results=rows, ended=ended)
                for task in leased
                for rows, ended in ((HALVES[0], False), (HALVES[1], True))
            ]
            began = time.perf_counter()  # the server's work, not the agent's making the rows
            with recorder.recording("report"):
                for report in reports:
                    await store.record_chunk_results(agent.id, [report])
            reporting += time.perf_counter() - began
    finally:
        await store.close()
    own = replay(before, recorder.statements)
    phases = ("insert", "lease", "report")
    return [inserted, leasing, reporting], [own.get(phase, 0.0) for phase in phases]


async def main(objects: int, rounds: int) -> None:
    best: list[float] | None = None
    own: list[float] | None = None
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            store_s, sqlite_s = await one_round(Path(folder), objects)
        figures = [s * 1e6 / objects for s in store_s]
        mine = [s * 1e6 / objects for s in sqlite_s]
        best = figures if best is None else [min(a, b) for a, b in zip(best, figures, strict=True)]
        own = mine if own is None else [min(a, b) for a, b in zip(own, mine, strict=True)]
    assert best is not None
    assert own is not None
    total, own_total = sum(best), sum(own)
    setup = f"{objects:,} objects in chunks of {CHUNK}, SQLite, best of {rounds} rounds"
    rows: list[list[Any]] = [
        [step, store_us, sqlite_us]
        for step, store_us, sqlite_us in zip(("insert", "lease", "report"), best, own, strict=True)
    ]
    rows.append(["in all", total, own_total])
    outcome = Result(
        "chunk_store",
        "Store cost of a small object in a chunk",
        setup,
        ["step", "µs per object", "of which SQLite's own"],
        rows,
    )
    outcome.goals = [
        Goal(
            "store-level insert + lease + report per small object ≤ 12 µs",
            f"{total:.1f} µs",
            total <= GOAL_US,
        ),
        Goal(
            "SQLite's own work per small object ≤ 6 µs",
            f"{own_total:.1f} µs",
            own_total <= SQLITE_GOAL_US,
        ),
    ]
    outcome.save()
    outcome.show()


GOAL_US = 12.0
SQLITE_GOAL_US = 6.0

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.rounds))
