"""The agent protocol's encoding alone: microseconds per object to write and read a lease of
500 tasks and a report of 500 results, each side as it does it (the server writes a lease from
the store's tasks and reads a report into the store's results; an agent reads a lease into the
tasks it holds and writes a report from their ends). No network, no database.

    python bench/protocol.py [--objects 500] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from scores import Result

from ferry.agent.held import HeldTask
from ferry.domain.locations import Location
from ferry.domain.transfers import TransferOptions
from ferry.protocol import LeaseReply, ReportedState, StorageAccess, TaskReport, decode, encode
from ferry.server.routes.agents import leased_public, results_of
from ferry.store.abc import LeasedTask

CALLS = 40  # per round: a round is long enough for the clock, short enough to repeat


def store_tasks(n: int) -> list[LeasedTask]:
    """What the store's lease returns: small objects of a tree, one run."""
    return [
        LeasedTask(
            id=i,
            lease=f"{i:032x}",
            transfer_id="0b7f3c9e-5d2a-4c1b-9e8f-123456789abc",
            run=1,
            source=Location("src", f"tree/d{i % 7}/file-{i}.bin"),
            destination=Location("dst", f"copy/d{i % 7}/file-{i}.bin"),
            size=4096,
            attempt=1,
            options=TransferOptions(),
        )
        for i in range(n)
    ]


STORAGES = {
    "src": StorageAccess(url="file:///data/src", options={}),
    "dst": StorageAccess(url="file:///data/dst", options={}),
}


def server_writes_lease(tasks: list[LeasedTask]) -> bytes:
    reply = LeaseReply(
        tasks=[leased_public(task) for task in tasks],
        storages=STORAGES,
        scopes={task.scope: task.weight for task in tasks},
    )
    return encode(reply)


def agent_reads_lease(body: bytes) -> list[HeldTask]:
    return [HeldTask.from_lease(task) for task in decode(LeaseReply, body).tasks]


def agent_writes_report(held: list[HeldTask]) -> bytes:
    ended = [
        task.ended(ReportedState.DONE, bytes=4096, checksum="adler32:0badf00d") for task in held
    ]
    return encode(ended)


def server_reads_report(body: bytes) -> int:
    return len(results_of(decode(list[TaskReport], body)))


def per_object(step: Callable[[Any], object], given: object, n: int, rounds: int) -> list[float]:
    """Microseconds per object of each round of ``CALLS`` calls of ``step(given)``."""
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(CALLS):
            step(given)
        figures.append((time.perf_counter() - started) / CALLS / n * 1e6)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    n = args.objects
    tasks = store_tasks(n)
    lease = server_writes_lease(tasks)
    held = agent_reads_lease(lease)
    report = agent_writes_report(held)
    assert server_reads_report(report) == n
    steps: list[tuple[str, Callable[[Any], object], object]] = [
        ("server writes lease", server_writes_lease, tasks),
        ("agent reads lease", agent_reads_lease, lease),
        ("agent writes report", agent_writes_report, held),
        ("server reads report", server_reads_report, report),
    ]
    rows: list[list[Any]] = []
    for name, step, given in steps:
        figures = per_object(step, given, n, args.rounds)
        rows.append([name, statistics.median(figures), min(figures)])
    rows.append(["all four", sum(row[1] for row in rows), sum(row[2] for row in rows)])
    setup = f"{n} objects a body, {args.rounds} rounds of {CALLS} calls, in one process"
    outcome = Result(
        "protocol", "Agent protocol encoding", setup, ["step", "median µs", "best µs"], rows
    )
    outcome.notes = [f"bytes: a lease {len(lease):,}, a report {len(report):,}"]
    outcome.save()
    outcome.show()


if __name__ == "__main__":
    main()
