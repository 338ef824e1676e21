"""The CLI on a terminal (a pseudo-terminal here) draws a progress bar while it waits; piped
or with ``--json`` it prints what it printed before."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

from e2e_support import FERRY, ServerProcess

OBJECTS_DRAWN = re.compile(rb"(\d+)/(\d+) objects")


def on_terminal(server: ServerProcess, *args: str, timeout: float = 120) -> tuple[int, bytes]:
    """Run ``ferry ARGS`` with a pseudo-terminal as its standard streams; its exit status
    and every byte it wrote."""
    leader, follower = pty.openpty()
    env = {**server.env(), "TERM": "xterm", "COLUMNS": "160", "LINES": "40"}
    with subprocess.Popen(
        [*FERRY, *args], cwd=server.cwd, env=env, stdin=follower, stdout=follower, stderr=follower
    ) as process:
        os.close(follower)
        written = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], deadline - time.monotonic())
                if not ready:
                    continue
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: every holder of the terminal closed it
                    break
                if not chunk:
                    break
                written += chunk
            status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if process.poll() is None:
                process.kill()
            os.close(leader)
    return status, bytes(written)


def add_slow_tree(server: ServerProcess) -> None:
    """Four objects of 1 MB that take a second each to open, one at a time: a run of about
    four seconds, with a progress event each second."""
    flags = ["--option", "size=1000000", "--option", "time=1", "--option", "files=4"]
    server.cli("storage", "add", "slow", "mock://slow", *flags, check=True)
    server.cli("storage", "add", "sink", "mock://sink", check=True)
    server.cli("channel", "set", "*", "*", "--max-active", "1", check=True)


def test_submit_wait_draws_a_progress_bar_on_a_terminal_only(start_server) -> None:
    server: ServerProcess = start_server()
    add_slow_tree(server)

    status, written = on_terminal(server, "submit", "--tree", "--wait", "slow:data", "sink:a")

    assert status == 0, written.decode(errors="replace")
    summary = written.index(b"objects: 4 total, 4 done")
    drawn = OBJECTS_DRAWN.findall(written[:summary])
    assert len(set(drawn)) >= 2, written.decode(errors="replace")  # it moved while it waited
    assert all(total == b"4" for _done, total in drawn)
    assert b"MB/s" in written[:summary]

    status, written = on_terminal(
        server, "submit", "--tree", "--wait", "--json", "slow:data", "sink:b"
    )
    assert status == 0
    assert b"\x1b" not in written  # no bar, no cursor movements
    assert json.loads(written)["status"] == "COMPLETED"

    piped = server.cli("submit", "--tree", "--wait", "slow:data", "sink:c", check=True)
    assert not OBJECTS_DRAWN.search(piped.stdout.encode())
    assert piped.stdout.splitlines()[-1].startswith("  objects: 4 total, 4 done")


def test_push_and_pull_count_objects_on_a_terminal(start_server, tmp_path) -> None:
    server: ServerProcess = start_server()
    folder = tmp_path / "tree"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / name).write_bytes(name.encode() * 1000)

    status, written = on_terminal(server, "push", "--tree", str(folder), "local:up")
    assert status == 0, written.decode(errors="replace")
    assert b"3/3 objects" in written[: written.index(b"COMPLETED")]

    status, written = on_terminal(server, "pull", "local:up", str(tmp_path / "back"))
    assert status == 0, written.decode(errors="replace")
    assert b"3/3 objects" in written[: written.index(b"COMPLETED")]
    assert (tmp_path / "back" / "b").read_bytes() == b"b" * 1000

    status, written = on_terminal(server, "push", "--json", str(folder / "a"), "local:again")
    assert status == 0
    assert b"\x1b" not in written
    assert json.loads(written)["status"] == "COMPLETED"
