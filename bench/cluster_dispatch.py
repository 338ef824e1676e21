"""Dispatch on one, two and three servers of one PostgreSQL database: zero-byte ``mock://``
objects through each server's two agents, objects per second from submission to the verdict,
and how long each lease held the lease lock every server of the database shares (the
``ferry_lease_lock_seconds`` histogram of each server, summed). The database is a throwaway
PostgreSQL of Debian's server binaries (``make test-servers`` installs them), made and removed
here (``tests/pg_server.py``).

    python bench/cluster_dispatch.py [--objects 100000] [--runs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ferry_process import FerryServer
from prometheus_client.parser import text_string_to_metric_families
from scores import Result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_server import PostgresCluster, postgres_cluster

NODES = (1, 2, 3)
FOLDERS = 100


def lock_held(servers: list[FerryServer]) -> tuple[float, float]:
    """Leases counted by every server's lock histogram, and their mean hold in ms."""
    count = total = 0.0
    for server in servers:
        text = server.http.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "ferry_lease_lock_seconds_count":
                    count += sample.value
                elif sample.name == "ferry_lease_lock_seconds_sum":
                    total += sample.value
    return count, (total / count * 1000 if count else 0.0)


def one_run(work: Path, url: str, nodes: int, objects: int) -> tuple[float, float, float]:
    """Seconds to move ``objects`` with ``nodes`` servers; leases and mean lock hold (ms)."""
    folders = [work / f"node{n}" for n in range(nodes)]
    for folder in folders:
        folder.mkdir(parents=True)
    servers = [FerryServer(folder, agents=2, extra=("--db", url)) for folder in folders]
    try:
        first = servers[0]
        options = {"folders": FOLDERS, "files": objects // FOLDERS, "size": 0}
        for name, mock, given in (("mk", "mock://any", options), ("sink", "mock://sink", {})):
            body = {"name": name, "url": mock, "options": given}
            first.http.post("/api/v1/storages", json=body).raise_for_status()
        started = time.perf_counter()
        transfer = first.submit(
            {"sources": ["mk:batch"], "destination": "sink:out", "kind": "tree"}
        )
        done = first.wait_finished(transfer["id"])
        elapsed = time.perf_counter() - started
        if done["status"] != "COMPLETED" or done["objects"]["done"] != objects:
            raise SystemExit(f"the run on {nodes} servers did not complete: {done}")
        leases, held_ms = lock_held(servers)
        return elapsed, leases, held_ms
    finally:
        for server in servers:
            server.stop()


def measure(cluster: PostgresCluster, root: Path, args: argparse.Namespace) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for nodes in NODES:
        runs = []
        for n in range(args.runs):
            url = cluster.url(cluster.create_database())
            runs.append(one_run(root / f"n{nodes}-{n}", url, nodes, args.objects))
        found[nodes] = runs
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-cluster-") as tmp, postgres_cluster() as pg:
        found = measure(pg, Path(tmp), args)
    result(found, args).show()


def result(found: dict[int, Any], args: argparse.Namespace) -> Result:
    columns = ["servers", "median s", "objects/s", "leases", "lock held, mean ms", "lock share"]
    rows: list[list[Any]] = []
    bars: dict[str, float] = {}
    for nodes, runs in found.items():
        median = statistics.median(run[0] for run in runs)
        leases = statistics.median(run[1] for run in runs)
        held = statistics.median(run[2] for run in runs)
        share = leases * held / 1000 / median  # of the run's wall time, the lock was held
        rows.append([nodes, median, args.objects / median, leases, held, f"{share:.0%}"])
        bars[f"{nodes} server{'s' if nodes > 1 else ''}"] = args.objects / median
    setup = (
        f"{args.objects:,} zero-byte mock objects in {FOLDERS} folders, two agents a server,"
        f" one PostgreSQL, {args.runs} runs each"
    )
    outcome = Result("cluster_dispatch", "Dispatch on several servers", setup, columns, rows)
    outcome.plot_label = "objects per second"
    outcome.bars = bars
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
