"""Small files: a tree of many 4 KiB files, local → local, through the whole system.

Ferry's time runs from the API call that submits the transfer to the moment the run is
COMPLETED (every object verified by adler32 and recorded), and, as a user sees it, from the
exec of ``ferry submit --tree --wait`` to its exit (the command line's start-up and its wait
on top of the same work), and ``ferry copy --tree`` (the engine alone, no server), against
``cp -r`` (the floor), ``rclone copy`` (which checks each copy's MD5) and a loop of gfal2
copies with adler32 checking (FTS3's engine, one ``filecopy`` per file). Figures are medians of
several runs taken in one invocation, shown as ratios: this machine is shared and noisy, ratios
travel better. The CPU time the server and its agents spend on each copy from the API
(``/proc``, before and after) is the whole system's, per 10,000 files.

    python bench/small_files.py [--files 10000] [--size 4096] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ferry_process import FerryServer
from scores import (
    GFAL2,
    RCLONE,
    Goal,
    Result,
    gfal2_available,
    median_ratio,
    rounds,
    run,
    timing_result,
)

FERRY = str(Path(sys.executable).with_name("ferry"))
CLI_GAP_GOAL_S = 0.1  # what the command line may add to the API's figure
CPU_GOAL_S = 1.3  # CPU of the server and its agents per 10,000 files


def make_tree(root: Path, files: int, size: int) -> None:
    block = os.urandom(size)
    for i in range(files):
        folder = root / f"d{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:06d}").write_bytes(i.to_bytes(8, "big") + block[8:])


class Spent:
    """CPU seconds of the server and of its agents, per copy measured."""

    def __init__(self, server: FerryServer) -> None:
        self.server = server
        self.copies: list[dict[str, float]] = []

    def copy_tree(self, source: str, destination: str) -> None:
        before = self.server.cpu_seconds()
        copy_tree(self.server, source, destination)
        after, roles = self.server.cpu_seconds(), dict(self.server.processes())
        spent = {"server": 0.0, "agents": 0.0}
        for pid, seconds in after.items():
            role = "server" if roles.get(pid) == "server" else "agents"
            spent[role] += seconds - before.get(pid, 0.0)
        self.copies.append(spent)

    def median(self, role: str | None = None) -> float:
        return statistics.median(
            sum(copy.values()) if role is None else copy[role] for copy in self.copies
        )


def copy_tree(server: FerryServer, source: str, destination: str) -> None:
    body = {"sources": [f"local:{source}"], "destination": f"local:{destination}", "kind": "tree"}
    status = server.wait_finished(server.submit(body)["id"])
    if status["status"] != "COMPLETED":
        raise SystemExit(f"ferry transfer ended {status['status']}: {status['error']}")


def submit_and_wait(server: FerryServer, source: str, destination: str) -> None:
    """``ferry submit --tree --wait`` into a pipe, as a script runs it; exit 0: COMPLETED."""
    command = [FERRY, "submit", "--tree", "--wait", f"local:{source}", f"local:{destination}"]
    run(command, cwd=server.cwd, env={**os.environ, "FERRY_URL": server.url})


def ferry_copy(work: Path, destination: str) -> None:
    """``ferry copy --tree``: the engine alone, no server (every copy verified by adler32)."""
    run([FERRY, "copy", "--tree", "local:src", f"local:{destination}"], cwd=str(work))


def peers(work: Path) -> dict[str, Callable[[int], object]]:
    """The peers found on this machine (``make bench-peers`` installs them all)."""
    source = str(work / "src")
    tools: dict[str, Callable[[int], object]] = {
        "cp -r": lambda i: run(["cp", "-r", source, str(work / f"cp-{i}")]),
    }
    if shutil.which("rclone"):
        tools["rclone copy"] = lambda i: run([*RCLONE, "copy", source, str(work / f"rclone-{i}")])
    if gfal2_available():
        tools["gfal2 loop"] = lambda i: run(
            [*GFAL2, "--checksum", "ADLER32", source, str(work / f"gfal2-{i}")]
        )
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        work = Path(tmp)
        make_tree(work / "src", args.files, args.size)
        server = FerryServer(work)
        spent = Spent(server)
        tools = {
            "ferry": lambda i: spent.copy_tree("src", f"ferry-{i}"),
            "ferry submit --wait": lambda i: submit_and_wait(server, "src", f"ferry-cli-{i}"),
            "ferry copy": lambda i: ferry_copy(work, f"ferry-copy-{i}"),
            **peers(work),
        }
        # Every copy is kept until the end (≈ 40 MiB each): deleting 10,000 files between runs
        # left the next writer's block allocations slow on a disk mounted with discard.
        try:
            times = rounds(tools, args.runs)
        finally:
            server.stop()
    result(times, spent, args).show()


def result(times: dict[str, list[float]], spent: Spent, args: argparse.Namespace) -> Result:
    setup = f"{args.files:,} × {args.size:,} B, local → local, {args.runs} runs"
    outcome = timing_result(
        "small_files", "Small files", setup, times, ("ferry", "ferry submit --wait", "ferry copy")
    )
    outcome.notes.append(f"ferry: {args.files / statistics.median(times['ferry']):,.0f} files/s")
    per = 10_000 / args.files
    cpu = spent.median() * per
    outcome.notes.append(
        f"CPU per 10,000 files, median: {cpu:.2f} s (server {spent.median('server') * per:.2f},"
        f" agents {spent.median('agents') * per:.2f})"
    )
    outcome.goals.append(
        Goal(
            f"CPU of the whole system per 10,000 ≤ {CPU_GOAL_S} s",
            f"{cpu:.2f} s",
            cpu <= CPU_GOAL_S,
        )
    )
    gap = statistics.median(times["ferry submit --wait"]) - statistics.median(times["ferry"])
    outcome.goals.append(
        Goal(
            f"`ferry submit --tree --wait` adds ≤ {CLI_GAP_GOAL_S} s to the API's figure",
            f"{gap:+.3f} s",
            gap <= CLI_GAP_GOAL_S,
        )
    )
    if "rclone copy" in times:
        for variant in ("ferry", "ferry submit --wait"):
            ratio = median_ratio(times, variant, "rclone copy")
            outcome.goals.append(
                Goal(f"small files: {variant} ≤ rclone", f"{ratio:.2f} × rclone", ratio <= 1)
            )
    if "rclone copy" in times:
        ratio = median_ratio(times, "ferry copy", "rclone copy")
        outcome.goals.append(
            Goal(
                "small files: ferry copy (no server) ≤ 1.1 × rclone",
                f"{ratio:.2f} × rclone",
                ratio <= 1.1,
            )
        )
    if "gfal2 loop" in times:
        ratio = median_ratio(times, "ferry", "gfal2 loop")
        outcome.goals.append(
            Goal("small files: far below gfal2 (≤ 0.5 ×)", f"{ratio:.2f} × gfal2", ratio <= 0.5)
        )
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
