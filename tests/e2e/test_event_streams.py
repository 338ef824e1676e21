"""Event streams: they never hold a stopping server up, and a watch learns of every change."""

from __future__ import annotations

import select
import signal
import sqlite3
import subprocess
import sys
import time
from typing import IO, Any

from e2e_support import FERRY, ServerProcess

from ferry.client import Client

FOLLOW_ALL = """
import sys, httpx
with httpx.stream("GET", sys.argv[1] + "/api/v1/events", timeout=None,
                  headers={"Authorization": "Bearer " + sys.argv[2]}) as response:
    for line in response.iter_lines():
        print(line, flush=True)
"""


def first_line(stream: IO[bytes] | None, timeout: float = 20) -> bytes:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output"
    return stream.readline()


def test_a_server_with_open_event_streams_stops_at_once(start_server) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = start_server()
    waiting = server.cli_json("submit", "--at", "+1h", "local:a", "local:b")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    watch = subprocess.Popen(
        [*FERRY, "watch", waiting["id"]], cwd=server.cwd, env=server.env(), **pipes
    )
    everything = subprocess.Popen(
        [sys.executable, "-c", FOLLOW_ALL, server.url, server.token], **pipes
    )
    assert b"STANDBY" in first_line(watch.stdout)  # the stream's opening snapshot
    server.cli("submit", "--at", "+2h", "local:c", "local:d", check=True)
    assert first_line(everything.stdout) == b"event: transfer\n"
    started = time.monotonic()

    status = server.stop(signal.SIGTERM)

    assert status == 0
    assert time.monotonic() - started < 4.0  # not uvicorn's 5 s limit for open requests
    assert watch.wait(timeout=10) == 1  # the stream ended before the transfer did
    everything.wait(timeout=10)
    for process in (watch, everything):
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


def test_a_watch_sees_a_change_this_server_never_published(start_server) -> None:  # type: ignore[no-untyped-def]
    """Another server on the same database (or a change made between a stream's first frame
    and its subscription) publishes nothing here: the stream reads the status again."""
    server: ServerProcess = start_server()
    waiting = server.cli_json("submit", "--at", "+1h", "local:a", "local:b")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    watch = subprocess.Popen(
        [*FERRY, "watch", waiting["id"]], cwd=server.cwd, env=server.env(), **pipes
    )
    assert b"STANDBY" in first_line(watch.stdout)

    with sqlite3.connect(server.cwd / ".ferry" / "ferry.db", timeout=10) as db:
        db.execute("UPDATE transfers SET status = 'CANCELED' WHERE id = ?", (waiting["id"],))

    assert watch.wait(timeout=15) == 1  # not COMPLETED
    output = watch.stdout.read() if watch.stdout else b""
    assert b"CANCELED" in output
    for stream in (watch.stdout, watch.stderr):
        assert stream is not None
        stream.close()


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


def test_a_running_transfers_stream_reports_its_progress_then_its_end(start_server) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = start_server()
    moving = submit_slow_tree(server, seconds_each=3)
    follow = subprocess.Popen(
        [sys.executable, "-c", FOLLOW_ONE, server.url, server.token, moving["id"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kinds: list[bytes] = []
    while b"COMPLETED" not in (line := first_line(follow.stdout)):
        if line.startswith(b"event: "):
            kinds.append(line.strip())
    follow.kill()
    follow.wait(timeout=10)

    assert b"event: progress" in kinds  # at least one tick while the objects moved
    for stream in (follow.stdout, follow.stderr):
        assert stream is not None
        stream.close()


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


def test_a_stream_of_one_kind_carries_that_kind_only(start_server) -> None:  # type: ignore[no-untyped-def]
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
