"""A million objects end to end (issue 21, step 10): a real ``ferry server`` on SQLite and two
agents move one tree of ``--objects`` zero-byte objects, in chunks.

Without ``--local``, the tree is a ``mock://`` source of ``--folders`` folders of objects
(a share ``--fail`` of them failing for good, so the run ends COMPLETED_WITH_ERRORS) into a ``mock://``
sink; with ``--local``, a tree of that many empty files made under ``--scratch`` is copied to
a local folder there, then the files that arrived are counted, and both are removed.

Measured: objects per second from the API call to the run's end; the peak resident memory of
the server and of each agent (``VmHWM`` from ``/proc``) and their CPU seconds; then, through
the HTTP API, ``--pages`` pages of 1,000 outcomes after random cursors and as many
``--status FAILED`` pages. Goals: server ≤ 400 MB, each agent ≤ 200 MB, p99 of a page ≤ 50 ms.

    python bench/million.py [--objects 1000000] [--local] [--pages 200]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry_process import FerryServer, cpu_seconds, proc_file
from scores import Goal, Result, percentile

PAGE = 1000
SERVER_GOAL_MB = 400
AGENT_GOAL_MB = 200
PAGE_GOAL_MS = 50
PERMANENT_ERRNO = 13  # EACCES: a failure that is not retried


@dataclass
class Peaks:
    """The peak resident memory (MB) and CPU seconds of the server and its agents, read from
    ``/proc`` every ``every`` seconds while the run goes on (an agent started again shows as a
    process of its own)."""

    server: FerryServer
    every: float = 1.0
    memory: dict[int, float] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopped.wait(self.every):
            self.read()

    def read(self) -> None:
        for pid, name in self.server.processes():
            status = proc_file(pid, "status")
            cpu = cpu_seconds(pid)
            if status is None or cpu is None:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            self.memory[pid] = int(fields["VmHWM"].split()[0]) / 1024
            self.cpu[pid] = cpu
            self.names[pid] = name

    def stop(self) -> None:
        self.read()
        self.stopped.set()
        self.thread.join()

    def of(self, name: str) -> list[tuple[float, float]]:
        """(peak MB, CPU s) of each process of that name."""
        return [(self.memory[p], self.cpu[p]) for p in self.memory if self.names[p] == name]


def make_tree(root: Path, objects: int, folders: int) -> None:
    """``objects`` empty files spread over ``folders`` folders."""
    per_folder = -(-objects // folders)
    for n in range(objects):
        folder = root / f"d{n // per_folder:05d}"
        if n % per_folder == 0:
            folder.mkdir(parents=True)
        os.close(os.open(folder / f"f{n:07d}", os.O_CREAT | os.O_WRONLY, 0o644))


def count_files(root: Path) -> int:
    return sum(len(files) for _folder, _subfolders, files in os.walk(root))


def mock_storages(server: FerryServer, args: argparse.Namespace) -> dict[str, Any]:
    """A source of ``--folders`` folders of objects and a sink; the transfer's body."""
    options = {
        "files": args.objects // args.folders, "folders": args.folders, "size": 0,
        "fail": args.fail, "errno": PERMANENT_ERRNO,
    }  # fmt: skip
    storages = [
        {"name": "mk", "url": "mock://any", "options": options},
        {"name": "sink", "url": "mock://sink", "options": {}},
    ]
    for storage in storages:
        server.http.post("/api/v1/storages", json=storage).raise_for_status()
    return {"sources": ["mk:batch"], "destination": "sink:out", "kind": "tree"}


def transfer(server: FerryServer, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    submitted = server.submit(body)
    done = server.wait_finished(submitted["id"])
    return done, time.perf_counter() - started


def page_times(
    server: FerryServer, transfer_id: str, cursors: list[int], status: str | None
) -> list[float]:
    """Milliseconds per page of the HTTP API, one page after each cursor."""
    spent = []
    for cursor in cursors:
        query: dict[str, Any] = {"cursor": cursor, "limit": PAGE}
        if status:
            query["status"] = status
        began = time.perf_counter()
        response = server.http.get(f"/api/v1/transfers/{transfer_id}/outcomes", params=query)
        response.raise_for_status()
        spent.append((time.perf_counter() - began) * 1000)
    return spent


def one_run(work: Path, args: argparse.Namespace) -> tuple[dict[str, Any], float, Peaks, dict]:
    server = FerryServer(work, agents=2)
    peaks = Peaks(server)
    try:
        if args.local:
            body = {"sources": ["local:src"], "destination": "local:dst", "kind": "tree"}
        else:
            body = mock_storages(server, args)
        done, wall = transfer(server, body)
        peaks.stop()
        rng = random.Random(21)
        cursors = [rng.randrange(0, args.objects - PAGE) for _ in range(args.pages)]
        pages = {"page of 1,000": page_times(server, done["id"], cursors, None)}
        if done["objects"]["failed"]:
            failed = page_times(server, done["id"], cursors, "FAILED")
            pages["--status FAILED page of 1,000"] = failed
        return done, wall, peaks, pages
    finally:
        peaks.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--folders", type=int, default=1000, help="folders the tree spreads over")
    parser.add_argument("--local", action="store_true", help="a local tree of empty files")
    parser.add_argument("--fail", type=float, default=0.001, help="share of mock objects failing")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--scratch", default="/var/tmp", help="where the local tree is made")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ferry-million-", dir=args.scratch))
    try:
        if args.local:
            began = time.perf_counter()
            make_tree(work / "src", args.objects, args.folders)
            print(f"made {args.objects:,} files in {time.perf_counter() - began:.0f} s")
        done, wall, peaks, pages = one_run(work, args)
        arrived = count_files(work / "dst") if args.local else None
    finally:
        # rm is several times faster than shutil.rmtree over a million files
        subprocess.run(["rm", "-rf", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    result(args, done, wall, peaks, pages, arrived).show()


def result(
    args: argparse.Namespace,
    done: dict[str, Any],
    wall: float,
    peaks: Peaks,
    pages: dict[str, list[float]],
    arrived: int | None,
) -> Result:
    mode = "local" if args.local else "mock"
    counts = done["objects"]
    expected = done["status"] == "COMPLETED" if args.local else done["status"].startswith("COMP")
    if not expected or counts["done"] + counts["failed"] != args.objects:
        raise SystemExit(f"the run did not end as expected: {done}")
    if arrived is not None and arrived != counts["done"]:
        raise SystemExit(f"{arrived:,} files arrived, {counts['done']:,} reported done")
    [(server_mb, server_cpu)] = peaks.of("server")
    agents = peaks.of("agent")
    columns = ["", "value"]
    rows: list[list[Any]] = [
        ["status", done["status"]],
        ["objects done", counts["done"]],
        ["objects failed", counts["failed"]],
        ["wall s", wall],
        ["objects/s", args.objects / wall],
        ["server peak RSS MB", server_mb],
        ["server CPU s", server_cpu],
        *[[f"agent {n} peak RSS MB", mb] for n, (mb, _cpu) in enumerate(agents, 1)],
        *[[f"agent {n} CPU s", cpu] for n, (_mb, cpu) in enumerate(agents, 1)],
    ]
    for name, spent in pages.items():
        rows += [[f"{name} p50 ms", percentile(spent, 0.5)]]
        rows += [[f"{name} p99 ms", percentile(spent, 0.99)]]
    if arrived is not None:
        rows.append(["files at the destination", arrived])
    setup = (
        f"{args.objects:,} zero-byte objects in {args.folders:,} folders, {mode} → {mode}, "
        f"SQLite, 2 agents, {args.pages} pages of each kind"
    )
    scenario = "million_local" if args.local else "million"
    outcome = Result(scenario, f"A million objects ({mode})", setup, columns, rows)
    outcome.goals = goals(f"{mode}, {args.objects:,}", server_mb, agents, pages)
    if not counts["failed"]:
        outcome.notes.append("no object failed: no --status FAILED page was timed")
    outcome.save()
    return outcome


def goals(
    label: str, server_mb: float, agents: list[tuple[float, float]], pages: dict[str, list[float]]
) -> list[Goal]:
    agent_mb = max(mb for mb, _cpu in agents)
    found = [
        Goal(f"{label}: server RSS ≤ {SERVER_GOAL_MB} MB", f"{server_mb:.0f} MB",
             server_mb <= SERVER_GOAL_MB),
        Goal(f"{label}: each agent RSS ≤ {AGENT_GOAL_MB} MB", f"{agent_mb:.0f} MB",
             agent_mb <= AGENT_GOAL_MB),
    ]  # fmt: skip
    for name, spent in pages.items():
        p99 = percentile(spent, 0.99)
        found.append(Goal(f"{label}: {name} p99 ≤ {PAGE_GOAL_MS} ms", f"{p99:.1f} ms",
                          p99 <= PAGE_GOAL_MS))  # fmt: skip
    return found


if __name__ == "__main__":
    main()
