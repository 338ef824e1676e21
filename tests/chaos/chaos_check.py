"""The end checks every reliability scenario makes once its transfer is over: the destination
equals the source by rclone (sizes and content, nothing missing, nothing extra), no temporary
``.part`` file is left, and the server's outcomes say every object of the run ended exactly once,
DONE (a retry after a lost lease is allowed; a second final outcome is not)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e_support import ServerProcess

FINAL = ("DONE", "SKIPPED", "FAILED", "CANCELED")
MATCHING = re.compile(r"(\d+) matching files")
PAGE = 10_000  # the most the outcomes endpoint gives at once


def rclone_check(src_dir: Path, dst_dir: Path) -> int:
    """``rclone check`` both ways (every file of each side on the other, same size and MD5);
    fails with rclone's report on any difference. Returns the number of matching files."""
    rclone = shutil.which("rclone")
    assert rclone, "rclone is missing: `make chaos` installs it (Debian's package rclone)"
    done = subprocess.run(
        [rclone, "check", str(src_dir), str(dst_dir), "--config", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"rclone check {src_dir} {dst_dir}:\n{done.stderr}"
    found = MATCHING.search(done.stderr)
    assert found, done.stderr
    return int(found.group(1))


def no_part_files(dst_dir: Path) -> None:
    """No temporary file of an unfinished copy (``.NAME.ferry-….part``) is left anywhere."""
    left = sorted(str(p.relative_to(dst_dir)) for p in dst_dir.rglob("*.part"))
    assert not left, f"{len(left)} temporary files left, e.g. {left[:5]}"


@dataclass(frozen=True)
class Ended:
    """What the outcomes of a run say, once every object ended exactly once."""

    objects: int
    lost: int  # attempts ended LOST (their lease expired; the object went back to the queue)
    requeued: int  # objects attempted more than once
    lost_again: int  # objects whose lease lapsed more than once
    stopped: int  # attempts ended STOPPED (their agent was told to stop)


def end_checks(
    server: ServerProcess, transfer_id: str, src_dir: Path, dst_dir: Path, files: int
) -> Ended:
    """All three checks on a transfer of ``files`` files from ``src_dir`` to ``dst_dir``."""
    assert rclone_check(src_dir, dst_dir) == files
    no_part_files(dst_dir)
    return ended_once(server, transfer_id, files)


def ended_once(server: ServerProcess, transfer_id: str, files: int) -> Ended:
    """Every object of the transfer's latest run ended exactly once, DONE: ``files`` objects,
    no number twice, each with one final attempt (its last), and the run counts ``files`` DONE."""
    transfer = server.api("GET", f"/api/v1/transfers/{transfer_id}").json()
    counts = transfer["objects"]
    assert counts["done"] == counts["total"] == files, transfer
    objects = outcomes(server, transfer_id)
    numbers = Counter(o["id"] for o in objects)
    assert len(objects) == files, f"{len(objects)} objects in the outcomes, {files} files"
    assert max(numbers.values()) == 1, [n for n, seen in numbers.items() if seen > 1][:5]
    attempts: Counter[str] = Counter()
    lost_again = 0
    for obj in objects:
        states = [a["state"] for a in obj["history"]]
        attempts.update(states)
        lost_again += states.count("LOST") > 1
        finals = [s for s in states if s in FINAL]
        assert (obj["status"], finals, states[-1]) == ("DONE", ["DONE"], "DONE"), obj
    requeued = sum(1 for o in objects if len(o["history"]) > 1)
    return Ended(files, attempts["LOST"], requeued, lost_again, attempts["STOPPED"])


def outcomes(server: ServerProcess, transfer_id: str) -> list[dict[str, Any]]:
    """Every object of the latest run, page by page through the API."""
    found: list[dict[str, Any]] = []
    cursor = 0
    while True:
        params = {"cursor": cursor, "limit": PAGE}
        response = server.api("GET", f"/api/v1/transfers/{transfer_id}/outcomes", params=params)
        response.raise_for_status()
        page = response.json()
        found += page["objects"]
        if page["next_cursor"] is None:
            return found
        cursor = int(page["next_cursor"])
