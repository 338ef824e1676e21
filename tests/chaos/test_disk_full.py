"""The destination's disk full (issue 22, item 5): a small tmpfs, most of it taken by a filler
file, receives more than fits. The copies that find no room fail as retryable (ENOSPC), leave
no temporary file and no partial file behind; once the filler is deleted, the retries complete
the run."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_check import no_part_files, outcomes, rclone_check
from chaos_figures import record
from daemon_support import wait_final
from e2e_support import ServerProcess, wait_for
from retried_outcomes import ended_once_after_retries, retried_attempts

MIB = 1024 * 1024
DISK = 16 * MIB
ROOM = 4 * MIB  # what the filler leaves free
LARGE, SMALL = 12, 40  # files of 1 MiB (one task each) and of 64 KiB (copied in chunks)
FILES = LARGE + SMALL


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``DISK`` bytes, unmounted after the test whatever happens."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path, room: int) -> Path:
    """A file taking all of ``disk`` but ``room`` bytes."""
    filler = disk / "filler"
    status = os.statvfs(disk)
    filler.write_bytes(b"\0" * (status.f_bavail * status.f_frsize - room))
    return filler


def _source(folder: Path) -> None:
    for number in range(LARGE):
        (folder / "large").mkdir(parents=True, exist_ok=True)
        (folder / "large" / f"l{number:02}.bin").write_bytes(os.urandom(MIB))
    for number in range(SMALL):
        (folder / "small").mkdir(parents=True, exist_ok=True)
        (folder / "small" / f"s{number:02}.bin").write_bytes(os.urandom(64 * 1024))


def _settled_with_failures(server: ServerProcess, transfer_id: str) -> bool:
    """Nothing copying any more, and some objects waiting for their retry."""
    states = Counter(o["status"] for o in outcomes(server, transfer_id))
    return not states["ACTIVE"] and not states["QUEUED"] and states["WAITING"] > 0


def test_a_full_disk_fails_retryably_and_the_run_completes_once_there_is_room(
    start_server, small_disk: Path
) -> None:
    """A tree of 14.5 MiB into a tmpfs with 4 MiB free: the copies that find no room fail as
    retryable ("no space left") and leave no .part and no partial file; once a filler file is
    deleted, their retries complete the run."""
    server: ServerProcess = start_server("--agents", "2")
    source = server.cwd / "src"
    _source(source)
    filler = _fill(small_disk, ROOM)
    body = {"name": "small", "url": small_disk.as_uri()}
    server.api("POST", "/api/v1/storages", json=body).raise_for_status()
    submitted = server.cli_json("submit", "--tree", "--retries", "5", "local:src", "small:out")

    wait_for(lambda: _settled_with_failures(server, submitted["id"]), timeout=60, interval=0.1)
    out = small_disk / "out"
    no_part_files(out)  # the copies that found no room left nothing behind
    for copied in out.rglob("*.bin"):  # and what is there is whole
        assert copied.read_bytes() == (source / copied.relative_to(out)).read_bytes()
    waiting = Counter(o["status"] for o in outcomes(server, submitted["id"]))["WAITING"]
    filler.unlink()
    freed = time.monotonic()
    done = wait_final(server, submitted["id"], timeout=120)
    took = time.monotonic() - freed

    assert done["status"] == "COMPLETED", done
    assert rclone_check(source, out) == FILES
    no_part_files(out)
    objects = ended_once_after_retries(server, submitted["id"], FILES)
    failed = [attempt for obj in objects for attempt in retried_attempts(obj)]
    assert failed
    for attempt in failed:
        assert attempt["error_class"] == "transient", attempt
        assert "no space left" in attempt["error"], attempt
    record(
        "destination disk full, then freed",
        objects=FILES,
        mib_to_copy=round((LARGE * MIB + SMALL * 64 * 1024) / MIB, 1),
        mib_free=ROOM // MIB,
        attempts_failed_no_space=len(failed),
        objects_waiting_when_full=waiting,
        freed_to_completed_s=round(took, 1),
    )
