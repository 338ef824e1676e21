"""Outcomes of a numbered run of 1,000,000 objects in chunks (issue 21, step 8).

A SQLite store is filled directly (SQLAlchemy Core, ``executemany``): one run of ``--objects``
objects in chunk lists of 500, one DONE carrier each, and one outcome row per object, one in
a thousand FAILED. Then, through ``Store.outcomes`` on the store's reader thread, it times
``--pages`` pages of 1,000 objects after random cursors and as many ``--status FAILED`` pages
of 1,000. Goal: p99 ≤ 50 ms for each. Then, without a goal, as many ``--status DONE`` pages
(through the outcomes' key) and ``--status QUEUED`` pages, empty here: the walk through the
run's carriers finds none in that state.

The process's collector is set as the server sets its own once started
(``ferry.daemon.collector.settle``): a page's objects outlive a pass or two of the collector,
and with Python's defaults every few pages one of them triggers a full pass over everything
the process holds (≈ 40 ms here), which a settled server does not walk. ``--unsettled``
keeps Python's defaults.

    python bench/chunk_outcomes.py [--objects 1000000] [--pages 200] [--unsettled]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scores import Goal, Result
from sqlalchemy import create_engine, insert, update

from ferry.daemon import collector
from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.store import tables as t
from ferry.store.abc import NewTransfer
from ferry.store.sql import SqlStore

CHUNK = 500
PAGE = 1000
FAILED_EVERY = 1000


def fill(database: Path, transfer_id: str, run: int, objects: int) -> None:
    """The run's chunk lists, carriers and outcomes, written straight into the file."""
    now = datetime.now(UTC)
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(
            update(t.runs)
            .where((t.runs.c.transfer_id == transfer_id) & (t.runs.c.number == run))
            .values(next_object=objects + 1, total=objects, expanded=True)
        )
        for first in range(1, objects + 1, CHUNK):
            count = min(CHUNK, objects + 1 - first)
            listed = [[object_path(n), 4096] for n in range(first, first + count)]
            conn.execute(
                insert(t.chunks).values(
                    transfer_id=transfer_id, run=run, first=first, count=count,
                    size=4096 * count, objects=json.dumps(listed),
                )
            )  # fmt: skip
            conn.execute(
                insert(t.tasks).values(
                    transfer_id=transfer_id, run=run, scope="default", priority=3,
                    state="DONE", source="src:in", destination="dst:out", size=4096 * count,
                    attempts=1, max_attempts=3, bytes_done=4096 * count, object=first,
                    objects=count, origin=first, lease_agent="agent-1", finished_at=now,
                )
            )  # fmt: skip
            conn.execute(insert(t.outcomes), outcome_rows(transfer_id, run, first, count, now))
    engine.dispose()


def object_path(number: int) -> str:
    return f"d{number // 10_000}/f{number:07d}"


def outcome_rows(
    transfer_id: str, run: int, first: int, count: int, now: datetime
) -> list[dict[str, object]]:
    """One DONE outcome per object of a chunk list, FAILED one in ``FAILED_EVERY``; a FAILED
    one names its object, as the store writes it."""
    rows = []
    for n in range(first, first + count):
        failed = n % FAILED_EVERY == 0
        rows.append(
            {
                "transfer_id": transfer_id, "run": run, "object": n, "attempt": 1,
                "state": "FAILED" if failed else "DONE", "bytes": 4096,
                "checksum": f"adler32:{n:08x}", "error_class": "io" if failed else None,
                "error": "denied" if failed else None, "agent": "agent-1",
                "started_at": now, "finished_at": now,
                "path": object_path(n) if failed else None, "size": 4096 if failed else None,
            }
        )  # fmt: skip
    return rows


async def timed(
    store: SqlStore, transfer_id: str, cursors: list[int], state: TaskState | None
) -> tuple[list[float], list[float]]:
    """Milliseconds per page, one page after each cursor: wall time, and the process's CPU
    time (which other work on a shared machine does not lengthen)."""
    spent, worked = [], []
    for after in cursors:
        began, cpu = time.perf_counter(), time.process_time()
        page = await store.outcomes(transfer_id, 1, after=after, limit=PAGE, state=state)
        spent.append((time.perf_counter() - began) * 1000)
        worked.append((time.process_time() - cpu) * 1000)
        assert page or state is TaskState.QUEUED, after
    return spent, worked


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument(
        "--unsettled",
        action="store_true",
        help="keep Python's collector defaults instead of settling it as the server does",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "ferry.db"
        store = SqlStore(f"sqlite+aiosqlite:///{database}")
        await store.open()
        await store.bootstrap()
        spec = TransferSpec(
            TransferKind.TREE,
            (parse_location("src:in"),),
            parse_location("dst:out"),
            TransferOptions(),
        )
        transfer, _ = await store.create_transfer(
            NewTransfer("default", "admin", spec, {}, datetime.now(UTC), None)
        )
        [run] = await store.claim_due_transfers(datetime.now(UTC), 1)
        began = time.perf_counter()
        fill(database, transfer.id, run.number, args.objects)
        print(f"filled {args.objects:,} objects in {time.perf_counter() - began:.1f} s")
        rng = random.Random(21)
        cursors = [rng.randrange(0, args.objects - PAGE) for _ in range(args.pages)]
        failed_cursors = [rng.randrange(0, args.objects // 2) for _ in cursors]
        if not args.unsettled:
            collector.settle()  # as ferry.server.run does once the application is up
        await timed(store, transfer.id, cursors[:10], None)  # warm the caches
        rows: list[list[Any]] = []
        for name, (spent, worked) in (
            ("page of 1,000", await timed(store, transfer.id, cursors, None)),
            (
                "--status FAILED page of 1,000",
                await timed(store, transfer.id, failed_cursors, TaskState.FAILED),
            ),
            ("--status DONE page", await timed(store, transfer.id, cursors, TaskState.DONE)),
            ("--status QUEUED (none)", await timed(store, transfer.id, cursors, TaskState.QUEUED)),
        ):
            rows.append(
                [
                    name,
                    percentile(spent, 0.5),
                    percentile(spent, 0.99),
                    max(spent),
                    percentile(worked, 0.5),
                    percentile(worked, 0.99),
                ]
            )
        await store.close()
    setup = f"{args.objects:,} objects in chunks of 500, SQLite, {args.pages} pages each"
    if args.unsettled:
        setup += ", Python's collector defaults"
    outcome = Result(
        "chunk_outcomes",
        "Outcomes of a run of small objects in chunks",
        setup,
        ["page", "p50 ms", "p99 ms", "max ms", "CPU p50 ms", "CPU p99 ms"],
        rows,
    )
    outcome.goals = [
        Goal(f"{name} at {args.objects:,} objects: p99 ≤ 50 ms", f"{p99:.0f} ms", p99 <= 50)
        for name, _p50, p99, *_others in rows[:2]
    ]
    outcome.save()
    outcome.show()


if __name__ == "__main__":
    asyncio.run(main())
