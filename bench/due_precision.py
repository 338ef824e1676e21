"""Due precision: 1,000 ``at`` transfers due at one instant, through a real server.

Reports the lag between each run's due time and its start (p50, p99, max; goal p99 ≤ 1 s), and
how many SQL statements one wake-up of the due loop costs, with the query plan that shows it
reads only due rows (an index search, not a scan of the transfers table).

    python bench/due_precision.py [--transfers 1000] [--idle 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ferry_process import FerryServer
from scores import Goal, Result, percentile
from sqlalchemy import event, select, text

from ferry.domain.locations import parse_location
from ferry.domain.schedules import Schedule, ScheduleKind
from ferry.domain.states import TransferStatus
from ferry.domain.transfers import TransferKind, TransferSpec
from ferry.scheduler.due import DueLoop
from ferry.scheduler.loop import Wakeups
from ferry.store import tables
from ferry.store.abc import NewTransfer
from ferry.store.sql import SqlStore


def lag_through_a_server(work: Path, count: int) -> list[float]:
    """Submit ``count`` transfers due at one instant over the API; return each run's lag (s)."""
    (work / "a.txt").write_text("a")
    server = FerryServer(work, agents=0)  # no agents: what is measured is the start of the runs
    try:
        # Far enough ahead for every submission to be in before the instant, on a fast machine
        # or a slow one: twice what submitting them all takes here, measured first.
        lead = max(10.0, 2 * count * seconds_per_submission(server))
        due = datetime.now(UTC) + timedelta(seconds=lead)
        ids = [server.submit(at_transfer(due))["id"] for _ in range(count)]
        if datetime.now(UTC) >= due:
            raise SystemExit("submission took longer than the lead time: raise it")
        time.sleep((due - datetime.now(UTC)).total_seconds() + 3)
        lags = []
        for transfer_id in ids:
            (run,) = server.http.get(f"/api/v1/transfers/{transfer_id}/runs").json()
            started = datetime.fromisoformat(run["started_at"])
            lags.append((started - datetime.fromisoformat(run["due_at"])).total_seconds())
        return lags
    finally:
        server.stop()


CALIBRATION = 20


def at_transfer(due: datetime) -> dict[str, Any]:
    return {
        "sources": ["local:a.txt"],
        "destination": "local:out",
        "schedule": {"kind": "at", "at": due.isoformat()},
    }


def seconds_per_submission(server: FerryServer) -> float:
    """What one submission takes on this machine, from a few due next year (they stay idle
    beside the measured ones)."""
    next_year = datetime.now(UTC) + timedelta(days=365)
    started = time.perf_counter()
    for _ in range(CALIBRATION):
        server.submit(at_transfer(next_year))
    return (time.perf_counter() - started) / CALIBRATION


async def statements_per_wakeup(work: Path, due: int, idle: int) -> tuple[int, list[str]]:
    """One wake-up of the due loop over ``due`` due transfers among ``idle`` that are not due:
    the SQL statements it runs, and the plan of its search."""
    store = SqlStore(f"sqlite+aiosqlite:///{work / 'count.db'}")
    await store.open()
    await store.bootstrap()
    now = datetime.now(UTC)
    await insert_transfers(store, due, now - timedelta(seconds=1))
    await insert_transfers(store, idle, now + timedelta(days=1))
    statements: list[str] = []
    for engine in store.engines:  # the writer's thread claims; reads run on their own threads
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    loop = DueLoop(store, Wakeups())
    await loop.run_once()
    await loop.delay()
    count = len(statements)
    c = tables.transfers.c
    search = select(c.id).where((c.status == TransferStatus.STANDBY.value) & (c.next_run_at <= now))
    async with store.engine.connect() as conn:
        compiled = search.compile(store.engine.sync_engine, compile_kwargs={"literal_binds": True})
        plan = [str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    await store.close()
    return count, plan


async def insert_transfers(store: SqlStore, count: int, when: datetime) -> None:
    spec = TransferSpec(
        TransferKind.FILE, (parse_location("local:a.txt"),), parse_location("local:out")
    )
    schedule = Schedule(ScheduleKind.AT, at=when).to_json()
    for _ in range(count):
        await store.create_transfer(NewTransfer("default", "admin", spec, schedule, when))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10_000, help="transfers not due, for the count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        lags = lag_through_a_server(Path(tmp), args.transfers)
        count, plan = asyncio.run(statements_per_wakeup(Path(tmp), args.transfers, args.idle))
    report(lags, count, plan, args)


def report(lags: list[float], count: int, plan: list[str], args: Any) -> None:
    p50, p99 = statistics.median(lags), percentile(lags, 0.99)
    total = args.transfers + args.idle
    columns = ["", "p50 s", "p99 s", "max s"]
    setup = f"{args.transfers:,} 'at' transfers due at one instant, real server"
    outcome = Result("due_precision", "Due precision", setup, columns, [])
    outcome.rows.append(["lag to run start", p50, p99, max(lags)])
    outcome.notes.append(
        f"due loop: {count} SQL statements for one wake-up claiming {args.transfers} of {total}"
    )
    outcome.notes.append("due search plan: " + "; ".join(plan))
    outcome.goals.append(Goal("due precision: p99 ≤ 1 s", f"{p99:.3f} s", p99 <= 1))
    outcome.plot_label, outcome.reference = "lag to run start, s (goal p99 ≤ 1 s)", 1
    outcome.bars = {"p50": p50, "p99": p99, "max": max(lags)}
    outcome.save()
    outcome.show()


if __name__ == "__main__":
    main()
