"""Store-level cost of a small object travelling in a chunk: insert, lease and report.

    PYTHONPATH=src python bench/chunk_store.py [objects] [rounds]

A real SqlStore on a scratch SQLite file: a run's objects inserted as chunks of 500 (pages of
1,000, as a listing gives them), leased 1,000 objects at a time by an agent that takes chunks,
and each carrier reported in two reports of 250 outcomes, the second ending it. Prints µs per
object of each phase, best of ``rounds``, as the store's callers see them (the writer thread's
transaction and the hand-off to it).
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

from ferry.domain.chunks import PlannedChunk
from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.protocol import PROTOCOL, ChunkReport, ReportedState
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


async def one_round(folder: Path, objects: int) -> tuple[float, float, float]:
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
        began = time.perf_counter()
        for page in made:
            await store.add_tasks(transfer, 1, page)
        inserted = time.perf_counter() - began
        leasing = reporting = 0.0
        while True:
            began = time.perf_counter()
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
            for report in reports:
                await store.record_chunk_results(agent.id, [report])
            reporting += time.perf_counter() - began
        return inserted, leasing, reporting
    finally:
        await store.close()


async def main(objects: int, rounds: int) -> None:
    best: list[float] | None = None
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            figures = [s * 1e6 / objects for s in await one_round(Path(folder), objects)]
        best = figures if best is None else [min(a, b) for a, b in zip(best, figures, strict=True)]
    assert best is not None
    insert, lease, report = best
    total = insert + lease + report
    setup = f"{objects:,} objects in chunks of {CHUNK}, SQLite, best of {rounds} rounds"
    rows: list[list[Any]] = [
        ["insert", insert],
        ["lease", lease],
        ["report", report],
        ["in all", total],
    ]
    outcome = Result(
        "chunk_store",
        "Store cost of a small object in a chunk",
        setup,
        ["step", "µs per object"],
        rows,
    )
    outcome.goals = [
        Goal(
            "store-level insert + lease + report per small object ≤ 12 µs",
            f"{total:.1f} µs",
            total <= GOAL_US,
        )
    ]
    outcome.save()
    outcome.show()


GOAL_US = 12.0

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.rounds))
