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

from ferry_process import FerryServer


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
    median = statistics.median(times)
    print(f"dispatch: {args.tasks} zero-byte mock objects, 2 agents, {args.runs} runs")
    print(f"{'':12}{'median s':>10}{'min s':>10}{'max s':>10}{'tasks/s':>12}")
    print(
        f"{'ferry':12}{median:10.2f}{min(times):10.2f}{max(times):10.2f}"
        f"{args.tasks / median:12,.0f}"
    )
    print("goal: ≥ 5,000 tasks/s")


if __name__ == "__main__":
    main()
