"""API under a big queue: 1,000,000 tasks in the database, 8 concurrent clients.

The server creates its schema at a first start; then, stopped, its SQLite file is filled
directly (SQLAlchemy Core, ``executemany``): transfers in ten scopes with labels, one run each,
and their tasks: 60 % ONGOING (a third of their objects DONE, the rest QUEUED), 30 % COMPLETED,
10 % COMPLETED_WITH_ERRORS. Restarted without agents (the queue stays as it is), it answers
8 clients for ``--seconds`` each phase: ``GET /transfers/{id}`` of random transfers, then
filtered pages ``GET /transfers?status=…&scope=…&limit=50``. Goals: p99 ≤ 20 ms for one
transfer, ≤ 50 ms for a page.

    python bench/big_queue.py [--transfers 1000] [--tasks-each 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from ferry_process import FerryServer
from scores import Goal, Result, percentile
from sqlalchemy import create_engine, insert

from ferry.domain.locations import Location
from ferry.domain.schedules import Schedule
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions, TransferSpec
from ferry.store import tables as t
from ferry.store.sql_insert import TASK_COLUMNS
from ferry.store.sql_insert import task_rows as new_task_rows

SCOPES = [f"scope-{n}" for n in range(10)]
LABELS = ["nightly", "raw", "physics", "calibration"]
CLIENTS = 8
STATUSES = ["ONGOING"] * 6 + ["COMPLETED"] * 3 + ["COMPLETED_WITH_ERRORS"]


@dataclass(frozen=True)
class Layout:
    """What the filled store looks like: the n-th transfer's status is ``statuses[n % len]``,
    it was created ``spacing × n`` ago (the newest first) and ended a minute later; its tasks
    go over ``links[n % len]`` (source site, destination site), and those that ended were
    leased by ``agent`` (none: no lease recorded)."""

    statuses: list[str] = field(default_factory=lambda: STATUSES)
    spacing: timedelta = timedelta(seconds=10)
    links: list[tuple[str, str]] = field(default_factory=lambda: [("default", "default")])
    agent: str | None = None


def transfer_rows(
    n: int, now: datetime, layout: Layout = Layout()
) -> tuple[dict[str, Any], TransferSpec]:
    source, destination = Location("local", f"in/t{n:05d}"), Location("local", f"out/t{n:05d}")
    labels = (LABELS[n % len(LABELS)],)
    spec = TransferSpec(TransferKind.TREE, (source,), destination, TransferOptions(labels=labels))
    created = now - layout.spacing * n
    row = {
        "id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
        "scope": SCOPES[n % len(SCOPES)],
        "submitter": "admin",
        "kind": spec.kind.value,
        "spec": spec.to_json(),
        "schedule": Schedule().to_json(),
        "status": layout.statuses[n % len(layout.statuses)],
        "next_run_at": None,
        "runs": 1,
        "submission_id": None,
        "spec_hash": f"{n:064x}",
        "schedule_kind": "direct",
        "cancel_requested": False,
        "created_at": created,
        "updated_at": created,
    }
    return row, spec


def task_rows(
    transfer: dict[str, Any],
    spec: TransferSpec,
    count: int,
    link: tuple[str, str] = ("default", "default"),
    agent: str | None = None,
) -> list[dict[str, Any]]:
    """The tasks of one transfer's run: DONE, FAILED and QUEUED as its status says."""
    status, finished = transfer["status"], transfer["created_at"] + timedelta(minutes=1)
    done = count // 3 if status == "ONGOING" else count
    failed = -(-count // 20) if status == "COMPLETED_WITH_ERRORS" else 0  # one at least
    planned = [
        PlannedTask(
            spec.sources[0].child(f"f{i}"),
            spec.destination.child(f"f{i}"),
            4096,
            TaskState.FAILED if i < failed else TaskState.DONE if i < done else TaskState.QUEUED,
        )
        for i in range(count)
    ]
    new = new_task_rows(transfer["id"], transfer["scope"], spec.options, 1, planned, SITES)
    rows = []
    for i, values in enumerate(new):
        row, state = dict(zip(TASK_COLUMNS, values, strict=True)), planned[i].state
        ended = state is not TaskState.QUEUED
        row |= {"attempts": int(ended), "finished_at": finished if ended else None}
        row |= {"bytes_done": 0, "checksum": None}  # executemany: every row the same keys
        row |= {"source_site": link[0], "destination_site": link[1]}
        row |= {"lease_agent": agent if ended else None}
        if state is TaskState.DONE:
            row |= {"bytes_done": 4096, "checksum": f"{i:08x}"}
        if state is TaskState.FAILED:
            row |= {"error_class": "permanent", "error": "not found"}
        rows.append(row)
    return rows


SITES = {"local": "default"}


def run_row(transfer: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    created, ongoing = transfer["created_at"], transfer["status"] == "ONGOING"
    states = [row["state"] for row in tasks]
    ended = None if ongoing else created + timedelta(minutes=1)
    return {
        "transfer_id": transfer["id"],
        "number": 1,
        "status": transfer["status"],
        "due_at": created,
        "started_at": created,
        "finished_at": ended,
        "occurrences": 1,
        "skipped_occurrences": 0,
        "expanded": True,
        "total": len(tasks),
        "done": states.count("DONE"),
        "failed": states.count("FAILED"),
        "skipped": 0,
        "canceled": 0,
        "bytes": sum(row["bytes_done"] for row in tasks),
        "size_total": 4096 * len(tasks),
        "last_result_at": ended,
    }


def fill(database: Path, transfers: int, tasks_each: int, layout: Layout = Layout()) -> list[str]:
    """Insert the queue into the stopped server's database; return the transfers' ids."""
    engine = create_engine(f"sqlite:///{database}")
    now = datetime.now(UTC)
    ids = []
    with engine.begin() as conn:
        conn.execute(
            insert(t.scopes), [{"name": s, "weight": 1, "created_at": now} for s in SCOPES]
        )
        queues = [
            {"scope": s, "source_site": source, "destination_site": destination}
            for s in SCOPES
            for source, destination in layout.links
        ]
        conn.execute(insert(t.queues), queues)
        for n in range(transfers):
            transfer, spec = transfer_rows(n, now, layout)
            link = layout.links[n % len(layout.links)]
            tasks = task_rows(transfer, spec, tasks_each, link, layout.agent)
            conn.execute(insert(t.transfers), [transfer])
            labels = [
                {"transfer_id": transfer["id"], "label": name} for name in spec.options.labels
            ]
            conn.execute(insert(t.transfer_labels), labels)
            conn.execute(insert(t.runs), [run_row(transfer, tasks)])
            conn.execute(insert(t.tasks), tasks)
            ids.append(transfer["id"])
    engine.dispose()
    return ids


def hammer(
    url: str,
    headers: dict[str, str],
    path_of: Callable[[random.Random], str],
    seconds: float,
    clients: int = CLIENTS,
) -> list[float]:
    """``clients`` client processes (threads of one process would queue on its own lock and
    add that to every figure), each with its own connection, asking back to back for
    ``seconds`` for the paths ``path_of`` picks; every request's latency in seconds. The
    clocks start together, once every client has started and connected: a client that began
    while the others were still starting (an interpreter's imports, a few hundred ms of CPU
    each) was measured against them, on the same two cores, and its slowest requests were
    theirs."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(clients)
    jobs = [(url, headers, path_of, seconds, seed) for seed in range(clients)]
    with context.Pool(clients, initializer=_share_barrier, initargs=(ready,)) as pool:
        per_client = pool.starmap(client, jobs)
    return [latency for latencies in per_client for latency in latencies]


_ready: Any = None  # each client process's copy of the barrier that starts the clocks


def _share_barrier(barrier: Any) -> None:
    global _ready
    _ready = barrier


def client(
    url: str,
    headers: dict[str, str],
    path_of: Callable[[random.Random], str],
    seconds: float,
    seed: int,
) -> list[float]:
    rng = random.Random(seed)
    latencies = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        http.get("/healthz")  # connected before the clock starts
        _ready.wait(timeout=120)  # each job holds its process until all are here: one each
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            path = path_of(rng)
            started = time.perf_counter()
            http.get(path).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def one_path(prefix: str, ids: list[str], rng: random.Random) -> str:
    return f"{prefix}{rng.choice(ids)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--tasks-each", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        work = Path(tmp)
        FerryServer(work, agents=0).stop()  # creates the schema
        started = time.perf_counter()
        ids = fill(work / ".ferry" / "ferry.db", args.transfers, args.tasks_each)
        filled = time.perf_counter() - started
        server = FerryServer(work, agents=0)
        headers = dict(server.http.headers)
        try:
            one_of = partial(one_path, "/api/v1/transfers/", ids)
            one = hammer(server.url, headers, one_of, args.seconds)
            page = hammer(server.url, headers, page_path, args.seconds)
        finally:
            server.stop()
    result({"GET /transfers/{id}": one, "GET /transfers?…&limit=50": page}, filled, args).show()


def page_path(rng: random.Random) -> str:
    status = rng.choice(["ONGOING", "COMPLETED"])
    return f"/api/v1/transfers?status={status}&scope={rng.choice(SCOPES)}&limit=50"


def result(latencies: dict[str, list[float]], filled: float, args: Any) -> Result:
    columns = ["request", "p50 ms", "p99 ms", "max ms", "requests/s"]
    tasks = args.transfers * args.tasks_each
    setup = f"{tasks:,} tasks in {args.transfers:,} transfers, {CLIENTS} clients, SQLite"
    outcome = Result("big_queue", "API under a big queue", setup, columns, [])
    for name, values in latencies.items():
        ms = [1000 * v for v in values]
        row = [
            name,
            statistics.median(ms),
            percentile(ms, 0.99),
            max(ms),
            round(len(ms) / args.seconds),
        ]
        outcome.rows.append(row)
        outcome.bars[f"{name} p99"] = row[2]
    outcome.plot_label = "p99 latency, ms (goals 20 and 50)"
    outcome.notes.append(f"database filled in {filled:.1f} s")
    for row, limit in zip(outcome.rows, (20, 50), strict=True):
        goal = f"big queue: {row[0]} p99 ≤ {limit} ms"
        outcome.goals.append(Goal(goal, f"{row[2]:.1f} ms", row[2] <= limit))
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
