"""Large file: one 1 GiB file, local → local, through the whole system.

Ferry copies it twice per round, verified by adler32 (the default: the copy is read back and
compared before it is moved into place) and with ``checksum: none``, against ``cp`` (the floor),
``rclone copyto`` (which checks the copy's MD5) and gfal2 with adler32 checking at both ends.
Each copy is deleted, untimed, before the next one: the source stays in the page cache for all.

    python bench/large_file.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
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

FERRY = ("ferry adler32", "ferry none")
BLOCK = 16 * 1024 * 1024


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for offset in range(0, size, BLOCK):
            out.write(os.urandom(min(BLOCK, size - offset)))


def copy_file(
    server: FerryServer, destination: str, checksum: str, source: str = "local:big.bin"
) -> None:
    body = {
        "sources": [source],
        "destination": f"local:{destination}",
        "options": {"checksum": checksum},
    }
    status = server.wait_finished(server.submit(body)["id"])
    if status["status"] != "COMPLETED":
        raise SystemExit(f"ferry transfer ended {status['status']}: {status['error']}")


def tools(server: FerryServer, work: Path) -> dict[str, Callable[[int], object]]:
    source = str(work / "big.bin")

    def target(i: int) -> str:
        (work / f"out-{i}").mkdir(exist_ok=True)
        return str(work / f"out-{i}" / "big.bin")

    found: dict[str, Callable[[int], object]] = {
        "ferry adler32": lambda i: copy_file(server, f"out-{i}", "adler32"),
        "ferry none": lambda i: copy_file(server, f"out-{i}", "none"),
        "cp": lambda i: run(["cp", source, target(i)]),
    }
    if shutil.which("rclone"):
        found["rclone copyto"] = lambda i: run([*RCLONE, "copyto", source, target(i)])
    if gfal2_available():
        found["gfal2 adler32"] = lambda i: run(
            [*GFAL2, "--checksum", "ADLER32", f"file://{source}", target(i)]
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        work = Path(tmp)
        make_file(work / "big.bin", args.size_mib * 1024 * 1024)
        server = FerryServer(work)

        def cleanup() -> None:
            for folder in work.glob("out-*"):
                shutil.rmtree(folder)

        try:
            times = rounds(tools(server, work), args.runs, cleanup)
        finally:
            server.stop()
    result(times, args).show()


def result(times: dict[str, list[float]], args: argparse.Namespace) -> Result:
    setup = f"{args.size_mib:,} MiB, local → local, {args.runs} runs"
    outcome = timing_result("large_file", "Large file", setup, times, FERRY)
    mib = args.size_mib
    for name in times:
        outcome.notes.append(f"{name}: {mib / min(times[name]):,.0f} MiB/s at best")
    verified = median_ratio(times, "ferry adler32", "cp")
    plain = median_ratio(times, "ferry none", "cp")
    outcome.goals = [
        Goal("large file, adler32: ≤ 1.5 × cp", f"{verified:.2f} × cp", verified <= 1.5),
        Goal("large file, checksum none: ≤ 1.1 × cp", f"{plain:.2f} × cp", plain <= 1.1),
    ]
    outcome.save()
    return outcome


if __name__ == "__main__":
    main()
