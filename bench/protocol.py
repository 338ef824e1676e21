"""The agent protocol's encoding alone: microseconds per object to write and read a lease of
500 tasks and a report of 500 results, each side as it does it (the server writes a lease from
the store's tasks and reads a report into the store's results; an agent reads a lease into the
tasks it holds and writes a report from their ends). The same for one chunk of 500 small
objects: a lease of one carrier, its list sent as stored, and a ``Results`` body of 500 rows.
No network, no database.

    python bench/protocol.py [--objects 500] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from scores import Result

from ferry.agent.held import HeldChunk, HeldTask
from ferry.api.protocol import (
    ChunkReport,
    LeasedChunk,
    LeasedTaskPublic,
    LeaseReply,
    ReportedState,
    Results,
    StorageAccess,
    TaskReport,
    decode,
    encode,
)
from ferry.domain.locations import Location
from ferry.domain.options import Checksum, Overwrite
from ferry.domain.transfers import TransferOptions
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


def stored_list(n: int) -> bytes:
    """A chunk list as the store keeps it: JSON text, written once when the tree was listed."""
    return orjson.dumps([[f"d{i % 7}/file-{i}.bin", 4096] for i in range(n)])


def server_writes_chunk_lease(stored: bytes) -> bytes:
    carrier = LeasedTaskPublic(
        id=1,
        lease=f"{1:032x}",
        transfer="0b7f3c9e-5d2a-4c1b-9e8f-123456789abc",
        run=1,
        source="src:tree",
        destination="dst:copy",
        size=4096 * 500,
        attempt=1,
        checksum=Checksum.ADLER32,
        overwrite=Overwrite.NEVER,
        # sent as stored, not read into tuples and written again
        chunk=LeasedChunk(first=1, objects=cast(Any, orjson.Fragment(stored))),
    )
    return encode(LeaseReply(tasks=[carrier], storages=STORAGES, scopes={"default": 1}))


def agent_reads_chunk_lease(body: bytes) -> list[HeldChunk]:
    return [HeldChunk.from_lease(task) for task in decode(LeaseReply, body).tasks]


def agent_writes_chunk_report(held: list[HeldChunk]) -> bytes:
    reports = []
    for chunk in held:
        rows = [
            (offset, ReportedState.DONE, 4096, "adler32:0badf00d", None, None, False)
            for offset in chunk.offsets
        ]
        reports.append(
            ChunkReport(task=chunk.id, lease=chunk.leased.lease, results=rows, ended=True)
        )
    return encode(Results(chunks=reports))


def server_reads_chunk_report(body: bytes) -> int:
    return sum(len(chunk.results) for chunk in decode(Results, body).chunks)


def per_object(step: Callable[[Any], object], given: object, n: int, rounds: int) -> list[float]:
    """Microseconds per object of each round of ``CALLS`` calls of ``step(given)``."""
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(CALLS):
            step(given)
        figures.append((time.perf_counter() - started) / CALLS / n * 1e6)
    return figures


def measured(
    steps: list[tuple[str, Callable[[Any], object], object]], n: int, rounds: int, total: str
) -> list[list[Any]]:
    """A row per step, median and best µs per object, and a row of their sum."""
    rows: list[list[Any]] = []
    for name, step, given in steps:
        figures = per_object(step, given, n, rounds)
        rows.append([name, statistics.median(figures), min(figures)])
    rows.append([total, sum(row[1] for row in rows), sum(row[2] for row in rows)])
    return rows


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
    stored = stored_list(n)
    chunk_lease = server_writes_chunk_lease(stored)
    chunks = agent_reads_chunk_lease(chunk_lease)
    chunk_report = agent_writes_chunk_report(chunks)
    assert server_reads_chunk_report(chunk_report) == n
    chunk_steps: list[tuple[str, Callable[[Any], object], object]] = [
        ("chunk: server writes lease", server_writes_chunk_lease, stored),
        ("chunk: agent reads lease", agent_reads_chunk_lease, chunk_lease),
        ("chunk: agent writes report", agent_writes_chunk_report, chunks),
        ("chunk: server reads report", server_reads_chunk_report, chunk_report),
    ]
    rows = measured(steps, n, args.rounds, "tasks: all four")
    rows += measured(chunk_steps, n, args.rounds, "chunk: all four")
    setup = f"{n} objects a body, {args.rounds} rounds of {CALLS} calls, in one process"
    outcome = Result(
        "protocol", "Agent protocol encoding", setup, ["step", "median µs", "best µs"], rows
    )
    outcome.notes = [
        f"bytes: a lease {len(lease):,}, a report {len(report):,}",
        f"bytes of a chunk: a lease {len(chunk_lease):,}, a report {len(chunk_report):,}",
    ]
    outcome.save()
    outcome.show()


if __name__ == "__main__":
    main()
