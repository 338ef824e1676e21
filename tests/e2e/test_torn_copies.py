"""Torn copies through the real server and its agents (defect 18.4): a copy whose temporary file
is written to by someone else, or whose source changes in place while it is read, never ends
DONE with content other than its recorded checksum."""

from __future__ import annotations

import os
import threading
import zlib
from pathlib import Path

from e2e_support import ServerProcess, readers_of, wait_for

SIZE = 48 * 1024 * 1024  # three seconds at the transfer's 16M limit: time to interfere


def _adler32(path: Path) -> str:
    running = 1
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            running = zlib.adler32(block, running)
    return f"adler32:{running:08x}"


def _submit_slow(server: ServerProcess, source: Path) -> str:
    source.write_bytes(os.urandom(SIZE))
    os.utime(source, (1_000_000_000, 1_000_000_000))  # a change now shows in its mtime
    transfer = server.cli_json("submit", "--bandwidth", "16M", "local:big.bin", "local:out/")
    return str(transfer["id"])


def _finished(server: ServerProcess, transfer: str) -> dict:
    status = lambda: server.cli_json("status", transfer)  # noqa: E731
    return wait_for(
        lambda: (s := status())["status"] not in ("STANDBY", "ONGOING") and s, timeout=120
    )


def _only_outcome(server: ServerProcess, transfer: str) -> dict:
    (outcome,) = server.cli_json("outcomes", transfer)["objects"]
    return outcome


def test_a_writer_at_the_temporary_files_cannot_tear_a_copy(start_server) -> None:
    server = start_server()
    source = server.cwd / "big.bin"
    transfer = _submit_slow(server, source)
    out = server.cwd / "out"
    finished = threading.Event()
    tampered: list[str] = []

    def tamper() -> None:  # whatever temporary file shows, a block of it is overwritten
        while not finished.is_set():
            for part in out.glob(".*.part") if out.is_dir() else ():
                try:
                    with part.open("r+b") as handle:
                        handle.write(b"\0" * 4096)
                    tampered.append(part.name)
                except OSError:
                    continue

    writer = threading.Thread(target=tamper)
    writer.start()
    try:
        wait_for(lambda: readers_of(server, source), timeout=30, interval=0.005)
        final = _finished(server, transfer)
    finally:
        finished.set()
        writer.join()
    outcome = _only_outcome(server, transfer)
    assert final["status"] == "COMPLETED", outcome
    assert outcome["checksum"] == _adler32(out / "big.bin") == _adler32(source)
    assert tampered == []  # nothing was there to open while the bytes were written


def test_a_source_changed_in_place_is_copied_again_not_kept_torn(start_server) -> None:
    server = start_server()
    source = server.cwd / "big.bin"
    transfer = _submit_slow(server, source)
    wait_for(lambda: readers_of(server, source), timeout=30, interval=0.005)
    with source.open("r+b") as handle:  # the same size, its first bytes new
        handle.write(os.urandom(4096))

    final = _finished(server, transfer)
    outcome = _only_outcome(server, transfer)
    assert final["status"] == "COMPLETED", outcome
    assert outcome["attempts"] == 2
    assert "changed while being copied" in outcome["history"][0]["error"]
    assert outcome["checksum"] == _adler32(server.cwd / "out" / "big.bin") == _adler32(source)
