"""Dispatch: zero-byte ``mock://`` objects through the scheduler and two agents, tasks per
second from submission to the verdict (goal ≥ 5,000 tasks/s on SQLite). No disk, no data:
what is measured is listing, leasing, reporting and finishing, in batches.

    python bench/dispatch.py [--tasks 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ferry_process import FerryServer
from scores import Goal, Result


def one_run(work: Path, tasks: int) -> float:
    work.mkdir(parents=True)
    server = FerryServer(work, agents=2)
    try:
        storages = [
            {"name": "mk", "url": "mock://any", "options": {"files": tasks, "size": 0}},
            {"name": "sink", "url": "mock://sink", "options": {}},
        ]
        for storage in storages:
            server.http.post("/api/v1/storages", json=storage).raise_for_status()
        started = time.perf_counter()
        transfer = server.submit(
            {"sources": ["mk:batch"], "destination": "sink:out", "kind": "tree"}
        )
        done = server.wait_finished(transfer["id"])
        elapsed = time.perf_counter() - started
        if done["status"] != "COMPLETED" or done["objects"]["done"] != tasks:
            raise SystemExit(f"dispatch run did not complete: {done}")
        return elapsed
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-dispatch-") as tmp:
        times = [one_run(Path(tmp) / f"run{n}", args.tasks) for n in range(args.runs)]
    result(times, args).show()


def result(times: list[float], args: argparse.Namespace) -> Result:
    median = statistics.median(times)
    rate = args.tasks / median
    columns = ["", "median s", "min s", "max s", "tasks/s"]
    rows: list[list[Any]] = [["ferry", median, min(times), max(times), rate]]
    setup = f"{args.tasks:,} zero-byte mock objects, 2 agents, {args.runs} runs"
    outcome = Result("dispatch", "Dispatch", setup, columns, rows)
    outcome.plot_label = "tasks per second (goal ≥ 5,000)"
    outcome.bars, outcome.reference = {"ferry": rate}, 5000
    outcome.goals.append(Goal("dispatch: ≥ 5,000 tasks/s", f"{rate:,.0f} tasks/s", rate >= 5000))
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
