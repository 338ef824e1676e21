"""Small files: a tree of many 4 KiB files, local → local, through the whole system.

Ferry's time runs from the API call that submits the transfer to the moment the run is
COMPLETED (every object verified and recorded), against ``cp -r`` (the floor) and, when
installed, ``rclone copy``. Figures are medians of several runs taken in one invocation, shown
as ratios: this machine is shared and noisy, ratios travel better than seconds.

    python bench/small_files.py [--files 10000] [--size 4096] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ferry_process import FerryServer


def make_tree(root: Path, files: int, size: int) -> None:
    block = os.urandom(size)
    for i in range(files):
        folder = root / f"d{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:06d}").write_bytes(i.to_bytes(8, "big") + block[8:])


def copy_tree(server: FerryServer, source: str, destination: str) -> None:
    body = {"sources": [f"local:{source}"], "destination": f"local:{destination}", "kind": "tree"}
    status = server.wait_finished(server.submit(body)["id"])
    if status["status"] != "COMPLETED":
        raise SystemExit(f"ferry transfer ended {status['status']}: {status['error']}")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


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
        tools: dict[str, Callable[[int], object]] = {
            "ferry": lambda i: copy_tree(server, "src", f"ferry-{i}"),
            "cp -r": lambda i: run(["cp", "-r", str(work / "src"), str(work / f"cp-{i}")]),
        }
        if shutil.which("rclone"):
            tools["rclone copy"] = lambda i: run(
                ["rclone", "copy", str(work / "src"), str(work / f"rclone-{i}")]
            )
        times: dict[str, list[float]] = {name: [] for name in tools}
        try:
            for i in range(args.runs):
                for name, action in tools.items():  # interleaved: noise hits every tool alike
                    times[name].append(timed(lambda action=action, i=i: action(i)))
        finally:
            server.stop()
        report(times, args)


def report(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    ferry = statistics.median(times["ferry"])
    shape = f"{args.files} × {args.size} B, local → local"
    print(f"small files: {shape}, {args.runs} runs, {os.cpu_count()} cores")
    print(f"{'tool':<14}{'median s':>10}{'min s':>10}{'max s':>10}{'ferry ÷ tool':>14}")
    for name, values in times.items():
        median = statistics.median(values)
        spread = f"{median:>10.2f}{min(values):>10.2f}{max(values):>10.2f}"
        print(f"{name:<14}{spread}{ferry / median:>14.2f}")
    print(f"ferry: {args.files / ferry:,.0f} files/s")


if __name__ == "__main__":
    main()
