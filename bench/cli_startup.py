"""CLI start-up: how long a `ferry` command takes from exec to exit, with `python -c pass`
(the interpreter alone) and `rclone version` (a compiled peer) beside it.

`ferry --help` and `ferry status ID --json` against a running server (one finished transfer on
it), each run in turn with the others so that the machine's noise hits them alike; medians.

    python bench/cli_startup.py [--runs 10]
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
from scores import RCLONE, Goal, Result, rounds, run

FERRY = str(Path(sys.executable).with_name("ferry"))
HELP_GOAL_S = 0.10
STATUS_GOAL_S = 0.15


def tools(server: FerryServer, transfer_id: str) -> dict[str, Callable[[int], object]]:
    env = {**os.environ, "FERRY_URL": server.url}
    found: dict[str, Callable[[int], object]] = {
        "python -c pass": lambda _i: run([sys.executable, "-c", "pass"]),
        "ferry --help": lambda _i: run([FERRY, "--help"]),
        "ferry status --json": lambda _i: run(
            [FERRY, "status", transfer_id, "--json"], cwd=server.cwd, env=env
        ),
    }
    if shutil.which("rclone"):
        found["rclone version"] = lambda _i: run([*RCLONE, "version"])
    return found


def finished_transfer(server: FerryServer) -> str:
    (server.cwd / "a.txt").write_text("a")
    transfer = server.submit({"sources": ["local:a.txt"], "destination": "local:out"})
    server.wait_finished(transfer["id"])
    return str(transfer["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        server = FerryServer(Path(tmp))
        try:
            times = rounds(tools(server, finished_transfer(server)), args.runs)
        finally:
            server.stop()
    result(times, args).show()


def result(times: dict[str, list[float]], args: argparse.Namespace) -> Result:
    medians = {name: statistics.median(values) for name, values in times.items()}
    python = medians["python -c pass"]
    columns = ["command", "median s", "min s", "max s", "÷ python -c pass"]
    rows = [
        [name, medians[name], min(values), max(values), medians[name] / python]
        for name, values in times.items()
    ]
    setup = f"exec to exit, {args.runs} interleaved runs, a server on 127.0.0.1 with SQLite"
    outcome = Result(
        "cli_startup",
        "CLI start-up",
        setup,
        columns,
        rows,
        plot_label="median seconds (red: the goal for `ferry status --json`)",
        bars=medians,
        reference=STATUS_GOAL_S,
    )
    help_s, status_s = medians["ferry --help"], medians["ferry status --json"]
    outcome.goals = [
        Goal(f"`ferry --help` ≤ {HELP_GOAL_S} s", f"{help_s:.3f} s", help_s <= HELP_GOAL_S),
        Goal(
            f"`ferry status ID --json` ≤ {STATUS_GOAL_S} s",
            f"{status_s:.3f} s",
            status_s <= STATUS_GOAL_S,
        ),
    ]
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
