"""Event streams: they never hold a stopping server up, and a watch learns of every change."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from e2e_support import FERRY, ServerProcess

from ferry.client import Client

# Prints the stream's lines from its first event on; ``: listening`` (the stream hears every
# change from then) as ``listening``: what a test waits for before it acts.
FOLLOW_ALL = """
import sys, httpx
with httpx.stream("GET", sys.argv[1] + "/api/v1/events", timeout=None,
                  headers={"Authorization": "Bearer " + sys.argv[2]}) as response:
    for line in response.iter_lines():
        if line == ": listening":
            print("listening", flush=True)
        elif line:
            print(line, flush=True)
"""


@contextlib.contextmanager
def child(args: list[str], **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A child process printing into pipes. Leaving kills it if it still runs and closes its
    pipes, a failed assertion included: no child outlives its test (one left for the garbage
    collector fails a later test on the same worker)."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
    with process:  # closes the pipes and waits
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


class Lines:
    """The lines a child prints, each awaited for at most ``timeout`` seconds.

    ``select`` sees the pipe, not a buffered reader's buffer: a ``readline`` that read two
    lines at once left the second where ``select`` could not see it, and the wait for it
    lasted until the child printed again, or timed out if it never did. So the bytes are
    read from the pipe itself, and those past a line are kept here."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        self.fd = stream.fileno()
        self.unread = b""

    def next(self, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.unread:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no output (unread: {self.unread!r})"
            chunk = os.read(self.fd, 65536)
            assert chunk, f"the output ended (unread: {self.unread!r})"
            self.unread += chunk
        line, _, self.unread = self.unread.partition(b"\n")
        return line + b"\n"


def test_a_server_with_open_event_streams_stops_at_once(start_server) -> None:
    server: ServerProcess = start_server()
    waiting = server.cli_json("submit", "--at", "+1h", "local:a", "local:b")
    with (
        child([*FERRY, "watch", waiting["id"]], cwd=server.cwd, env=server.env()) as watch,
        child([sys.executable, "-c", FOLLOW_ALL, server.url, server.token]) as everything,
    ):
        assert b"STANDBY" in Lines(watch.stdout).next()  # the stream's opening snapshot
        heard = Lines(everything.stdout)
        assert heard.next() == b"listening\n"
        server.cli("submit", "--at", "+2h", "local:c", "local:d", check=True)
        assert heard.next() == b"event: transfer\n"
        started = time.monotonic()

        status = server.stop(signal.SIGTERM)

        assert status == 0
        assert time.monotonic() - started < 4.0  # not uvicorn's 5 s limit for open requests
        assert watch.wait(timeout=10) == 1  # the stream ended before the transfer did
        everything.wait(timeout=10)


def test_a_watch_sees_a_change_this_server_never_published(start_server) -> None:
    """Another server on the same database (or a change made between a stream's first frame
    and its subscription) publishes nothing here: the stream reads the status again."""
    server: ServerProcess = start_server()
    waiting = server.cli_json("submit", "--at", "+1h", "local:a", "local:b")
    with child([*FERRY, "watch", waiting["id"]], cwd=server.cwd, env=server.env()) as watch:
        lines = Lines(watch.stdout)
        assert b"STANDBY" in lines.next()

        with sqlite3.connect(server.cwd / ".ferry" / "ferry.db", timeout=10) as db:
            db.execute("UPDATE transfers SET status = 'CANCELED' WHERE id = ?", (waiting["id"],))

        assert watch.wait(timeout=15) == 1  # not COMPLETED
        output = lines.unread + (watch.stdout.read() if watch.stdout else b"")
    assert b"CANCELED" in output


FOLLOW_ONE = """
import sys, httpx
url = sys.argv[1] + "/api/v1/events?transfer=" + sys.argv[3]
with httpx.stream("GET", url, timeout=None,
                  headers={"Authorization": "Bearer " + sys.argv[2]}) as response:
    for line in response.iter_lines():
        print(line, flush=True)
"""


def submit_slow_tree(server: ServerProcess, *, seconds_each: float) -> dict[str, Any]:
    """A tree of two mock objects that take ``seconds_each`` to open, copied to a sink."""
    flags = ["--option", "size=1000", "--option", f"time={seconds_each}", "--option", "files=2"]
    server.cli("storage", "add", "slow", "mock://slow", *flags, check=True)
    server.cli("storage", "add", "sink", "mock://sink", check=True)
    moving: dict[str, Any] = server.cli_json("submit", "--tree", "slow:data", "sink:out")
    return moving


def test_a_running_transfers_stream_reports_its_progress_then_its_end(start_server) -> None:
    server: ServerProcess = start_server()
    moving = submit_slow_tree(server, seconds_each=3)
    kinds: list[bytes] = []
    following = [sys.executable, "-c", FOLLOW_ONE, server.url, server.token, moving["id"]]
    with child(following) as follow:
        lines = Lines(follow.stdout)
        while b"COMPLETED" not in (line := lines.next()):
            if line.startswith(b"event: "):
                kinds.append(line.strip())

    assert b"event: progress" in kinds  # at least one tick while the objects moved


FOLLOW_STATUS = """
import sys, httpx
url = sys.argv[1] + "/api/v1/events"
query = {"transfer": sys.argv[3], "kind": "transfer"}
with httpx.stream("GET", url, params=query, timeout=30,
                  headers={"Authorization": "Bearer " + sys.argv[2]}) as response:
    for line in response.iter_lines():
        print(line, flush=True)
        if "COMPLETED" in line:
            break
"""


def test_a_stream_of_one_kind_carries_that_kind_only(start_server) -> None:
    """The status of a transfer alone (what a script waiting for its end wants): none of its
    objects' changes, none of its progress ticks."""
    server: ServerProcess = start_server()
    moving = submit_slow_tree(server, seconds_each=1.5)
    follow = subprocess.run(
        [sys.executable, "-c", FOLLOW_STATUS, server.url, server.token, moving["id"]],
        capture_output=True,
        timeout=60,
        check=True,
    )
    kinds = {line for line in follow.stdout.splitlines() if line.startswith(b"event: ")}
    assert b'"status":"COMPLETED"' in follow.stdout
    assert kinds == {b"event: transfer"}
    outcomes = server.cli_json("outcomes", moving["id"])
    assert [o["status"] for o in outcomes["objects"]] == ["DONE", "DONE"]  # not streamed
    with Client(server.url, server.token) as client:  # the Python client asks the same
        opening = next(iter(client.events(moving["id"], kinds=["transfer"])))
    assert (opening["event"], opening["status"]) == ("transfer", "COMPLETED")
