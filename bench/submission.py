"""Submission: one transfer of 100,000 objects, seconds until the API has accepted it.

Four ways to hand the server 100,000 objects of a ``mock://`` storage, each timed from the
first request to the last answer (accepted) and to the moment every object is a task in the
queue (queued; the server runs no agents, so nothing moves):

- one ``file`` transfer listing every source (the API takes up to 100,000 in one request);
- ``file`` transfers of 10,000 sources each, one after the other;
- one ``tree`` transfer whose source folder lists 100,000 objects (the listing is the server's);
- one push (``POST /transfers/push``) declaring 100,000 objects.

    python bench/submission.py [--objects 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ferry_process import FerryServer
from scores import Goal, Result

MAX_SOURCES = 100_000  # TransferCreate.sources' max_length
BATCH = 10_000
Way = Callable[[FerryServer, int], list[httpx.Response]]


def one_file_transfer(server: FerryServer, count: int) -> list[httpx.Response]:
    sources = [f"mk:obj-{i:06d}" for i in range(count)]
    body = {"sources": sources, "destination": "sink:one"}
    return [server.http.post("/api/v1/transfers", json=body)]


def batches(server: FerryServer, count: int) -> list[httpx.Response]:
    answers = []
    for start in range(0, count, BATCH):
        sources = [f"mk:obj-{i:06d}" for i in range(start, min(count, start + BATCH))]
        body = {"sources": sources, "destination": f"sink:batch-{start}"}
        answers.append(server.http.post("/api/v1/transfers", json=body))
    return answers


def tree(server: FerryServer, count: int) -> list[httpx.Response]:
    body = {"sources": ["mk:folder"], "destination": "sink:tree", "kind": "tree"}
    return [server.http.post("/api/v1/transfers", json=body)]


def push(server: FerryServer, count: int) -> list[httpx.Response]:
    objects = [{"name": f"obj-{i:06d}", "size": 0} for i in range(count)]
    body = {"destination": "sink:pushed", "objects": objects}
    return [server.http.post("/api/v1/transfers/push", json=body)]


WAYS: dict[str, Way] = {
    "one file transfer": one_file_transfer,
    f"file × {BATCH:,}": batches,
    "one tree transfer": tree,
    "one push": push,
}


def transfer_ids(answers: list[httpx.Response]) -> list[str]:
    """The transfers accepted (a push answers with its transfer inside)."""
    bodies = [answer.json() for answer in answers if answer.is_success]
    return [body.get("transfer", body)["id"] for body in bodies]


def wait_queued(server: FerryServer, ids: list[str], count: int) -> None:
    """Until the accepted transfers hold ``count`` objects between them."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        statuses = [server.http.get(f"/api/v1/transfers/{i}").json() for i in ids]
        if sum(s["objects"]["total"] for s in statuses) >= count:
            return
        time.sleep(0.05)
    raise SystemExit(f"{count} objects were not queued after 10 minutes")


@dataclass
class Measured:
    accepted: float
    queued: float | None  # None: refused
    answer: str  # the status codes, and the reason of a refusal


def one_round(work: Path, count: int) -> dict[str, Measured]:
    """Each way, timed on a fresh server."""
    work.mkdir(parents=True)
    server = FerryServer(work, agents=0)
    try:
        for storage in (
            {"name": "mk", "url": "mock://any", "options": {"files": count}},
            {"name": "sink", "url": "mock://sink"},
        ):
            server.http.post("/api/v1/storages", json=storage).raise_for_status()
        return {name: measure(server, way, count) for name, way in WAYS.items()}
    finally:
        server.stop()


def measure(server: FerryServer, way: Way, count: int) -> Measured:
    started = time.perf_counter()
    answers = way(server, count)
    accepted = time.perf_counter() - started
    codes = "/".join(sorted({str(answer.status_code) for answer in answers}))
    refused = [answer.json() for answer in answers if not answer.is_success]
    if refused:
        return Measured(accepted, None, f"{codes}: {refused[0].get('detail', '')}")
    wait_queued(server, transfer_ids(answers), count)
    return Measured(accepted, time.perf_counter() - started, codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        rounds = [one_round(Path(tmp) / f"run{n}", args.objects) for n in range(args.runs)]
    result(rounds, args).show()


def result(rounds: list[dict[str, Measured]], args: Any) -> Result:
    columns = ["way", "accepted s", "min s", "max s", "queued s", "answer"]
    setup = f"{args.objects:,} mock:// objects, no agents, {args.runs} runs"
    outcome = Result("submission", "Submission", setup, columns, [])
    for name in WAYS:
        accepted = [r[name].accepted for r in rounds]
        queued = [q for r in rounds if (q := r[name].queued) is not None]
        answer, _, reason = rounds[-1][name].answer.partition(": ")
        median_queued = statistics.median(queued) if queued else None
        spread = [statistics.median(accepted), min(accepted), max(accepted)]
        outcome.rows.append([name, *spread, median_queued, answer])
        if reason:
            outcome.notes.append(f"{name}: refused: {reason}")
        else:
            outcome.bars[name] = statistics.median(accepted)
    outcome.plot_label, outcome.reference = "seconds until accepted (goal ≤ 2 s)", 2
    outcome.goals.append(submission_goal(outcome.rows, args.objects))
    outcome.save()
    return outcome


def submission_goal(rows: list[list[Any]], objects: int) -> Goal:
    """On the single request when the API takes that many sources, else on the batches."""
    single, batched = rows[0], rows[1]
    goal = f"submission: {objects:,} objects accepted ≤ 2 s"
    if objects <= MAX_SOURCES and single[4] is not None:
        return Goal(goal, f"{single[1]:.2f} s in one request", single[1] <= 2)
    requests = -(-objects // BATCH)
    figure = f"{batched[1]:.2f} s in {requests} requests of ≤ {BATCH:,} sources"
    return Goal(goal, figure, batched[1] <= 2)


if __name__ == "__main__":
    main()
