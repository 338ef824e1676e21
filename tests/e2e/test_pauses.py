"""Pause and resume (issue 23 item 8) through a real server and its agent, from the command
line, to the local disk and to a real SFTP server (OpenSSH's sshd on 127.0.0.1):

- a paused transfer starts no copy: its objects stay out of the queue while the agent, idle,
  asks for work; its active copy finishes; resumed, the run completes, each object moved once;
- ``pause --now`` stops the active copy, which leaves no partial file and goes back to the
  queue, its attempt not spent; resumed, it is copied whole, and nothing twice;
- a paused periodic transfer's occurrence is a SKIPPED run and a "run.skipped" event, and
  resumed it goes on with its next occurrence;
- a paused agent leases nothing and finishes what it holds; resumed, it leases again.

Each waits on a condition with a deadline; "nothing is leased while paused" is checked after
the agent has sent two heartbeats since its last copy ended (it asks for work all along)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import ServerProcess, readers_of, wait_for
from storage_servers import sftp_server

MB = 1024 * 1024
SMALL = ("a.bin", "b.bin", "c.bin")
STORAGES = ["local", "sftp"]


@contextmanager
def destination(storage: str, tmp_path: Path, server_of: Any) -> Iterator[tuple[Any, str, Path]]:
    """A server and where its transfers land: its own disk, or a real SFTP server's root."""
    if storage == "local":
        server = server_of()
        yield server, "local:out", server.cwd / "out"
        return
    with sftp_server(tmp_path / "sftp") as sftp:
        server = server_of()
        response = server.api("POST", "/api/v1/storages", json=sftp.registration("remote"))
        assert response.status_code == 201, response.text
        yield server, "remote:out", tmp_path / "sftp" / "root" / "out"


def slow_transfer(server: ServerProcess, to: str) -> dict[str, Any]:
    """One agent, one copy at a time: 6 MiB at 1 MiB/s, then three small objects."""
    server.cli("channel", "set", "*", "*", "--max-active", "1", check=True)
    (server.cwd / "in").mkdir()
    (server.cwd / "in" / "big.bin").write_bytes(os.urandom(6 * MB))
    for name in SMALL:
        (server.cwd / "in" / name).write_bytes(name.encode() * 100)
    sources = [f"local:in/{name}" for name in ("big.bin", *SMALL)]
    return dict(server.cli_json("submit", "--bandwidth", "1M", *sources, to))


def objects(server: ServerProcess, transfer_id: str) -> dict[str, dict[str, Any]]:
    found = server.api("GET", f"/api/v1/transfers/{transfer_id}/outcomes").json()["objects"]
    return {o["source"].rpartition("/")[2]: o for o in found}


def transfer(server: ServerProcess, transfer_id: str) -> dict[str, Any]:
    return dict(server.api("GET", f"/api/v1/transfers/{transfer_id}").json())


def completed(server: ServerProcess, transfer_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        seen = transfer(server, transfer_id)
        return seen if seen["status"] not in ("STANDBY", "ONGOING") else None

    return dict(wait_for(final, timeout=60))


def two_heartbeats_later(server: ServerProcess) -> None:
    """Wait until the (only) agent has sent two heartbeats from now: meanwhile it asked for
    work (its lease long-polls without a pause), so anything it could lease it would have."""
    [agent] = server.agents()
    since = agent["last_heartbeat"]

    def beats() -> int:
        [now] = server.agents()
        return 1 if now["last_heartbeat"] != since else 0

    wait_for(beats, timeout=10)
    since = server.agents()[0]["last_heartbeat"]
    wait_for(beats, timeout=10)


def same_bytes(source: Path, landed: Path) -> bool:
    digest = [hashlib.sha256(path.read_bytes()).hexdigest() for path in (source, landed)]
    return digest[0] == digest[1]


def check_each_moved_once(server: ServerProcess, transfer_id: str, out: Path) -> None:
    final = completed(server, transfer_id)
    assert final["status"] == "COMPLETED", final
    assert (final["objects"]["done"], final["objects"]["total"]) == (4, 4)
    moved = objects(server, transfer_id)
    assert {name: o["status"] for name, o in moved.items()} == dict.fromkeys(
        ("big.bin", *SMALL), "DONE"
    )
    for name in SMALL:  # never started while paused: one attempt each, the one that moved it
        assert moved[name]["attempts"] == 1
        assert [a["state"] for a in moved[name]["history"]] == ["DONE"]
    for name in ("big.bin", *SMALL):
        assert same_bytes(server.cwd / "in" / name, out / name)
    assert sorted(p.name for p in out.iterdir()) == sorted(("big.bin", *SMALL))  # no .part


@pytest.mark.parametrize("storage", STORAGES)
def test_a_paused_transfer_starts_nothing_until_resumed(start_server, tmp_path, storage):
    launch = lambda: start_server("--agents", "1", "--heartbeat", "0.5")  # noqa: E731
    with destination(storage, tmp_path, launch) as (server, to, out):
        submitted = slow_transfer(server, to)
        tid = submitted["id"]
        wait_for(lambda: readers_of(server, server.cwd / "in" / "big.bin"), timeout=30)

        paused = server.cli_json("pause", tid)
        assert (paused["objects"], paused["stopping_objects"]) == (3, 0)
        shown = server.cli("status", tid, check=True).stdout
        assert "  paused since " in shown
        assert transfer(server, tid)["status"] == "ONGOING"  # a pause is not a status
        # The copy under way finishes; nothing else starts.
        wait_for(lambda: objects(server, tid)["big.bin"]["status"] == "DONE", timeout=30)
        two_heartbeats_later(server)
        held = objects(server, tid)
        assert {name: held[name]["status"] for name in SMALL} == dict.fromkeys(SMALL, "PAUSED")
        assert transfer(server, tid)["objects"]["done"] == 1
        assert sorted(p.name for p in out.iterdir()) == ["big.bin"]

        again = server.cli("pause", tid)
        assert again.returncode == 1
        assert "paused already" in again.stderr
        resumed = server.cli_json("resume", tid)
        assert (resumed["objects"], resumed["paused_at"]) == (3, None)
        check_each_moved_once(server, tid, out)
        assert server.cli("resume", tid).returncode == 1  # finished
        assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("storage", STORAGES)
def test_pause_now_stops_the_copy_and_moves_it_once_resumed(start_server, tmp_path, storage):
    launch = lambda: start_server("--agents", "1", "--heartbeat", "0.5")  # noqa: E731
    with destination(storage, tmp_path, launch) as (server, to, out):
        tid = slow_transfer(server, to)["id"]
        wait_for(lambda: objects(server, tid)["big.bin"]["bytes"] > 0, timeout=30)

        paused = server.cli_json("pause", "--now", tid)
        assert (paused["objects"], paused["stopping_objects"]) == (3, 1)
        # Stopped at the agent's next heartbeat, given back and held: no partial file.
        wait_for(lambda: objects(server, tid)["big.bin"]["status"] == "PAUSED", timeout=30)
        two_heartbeats_later(server)
        big = objects(server, tid)["big.bin"]
        assert [a["state"] for a in big["history"]] == ["STOPPED"]
        assert "its transfer was paused" in big["history"][0]["error"]
        assert not out.exists() or list(out.iterdir()) == []
        assert transfer(server, tid)["objects"]["done"] == 0

        server.cli("resume", tid, check=True)
        check_each_moved_once(server, tid, out)
        big = objects(server, tid)["big.bin"]
        assert [a["state"] for a in big["history"]] == ["STOPPED", "DONE"]
        assert "Traceback" not in server.log.read_text()


class Events:
    """The server's event stream of ``kinds``, read on a thread: every event it sent."""

    def __init__(self, server: ServerProcess, *kinds: str) -> None:
        self.seen: list[dict[str, Any]] = []
        listening = threading.Event()
        params = [("kind", kind) for kind in kinds]
        headers = {"Authorization": f"Bearer {server.token}"}

        def read() -> None:
            url = f"{server.url}/api/v1/events"
            with httpx.stream("GET", url, params=params, headers=headers, timeout=None) as stream:
                for line in stream.iter_lines():
                    if line == ": listening":
                        listening.set()
                    elif line.startswith("data:"):
                        self.seen.append(json.loads(line[5:]))

        threading.Thread(target=read, daemon=True).start()
        assert listening.wait(10), "the event stream did not start"

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in list(self.seen) if event["event"] == kind]


def test_a_paused_schedule_skips_its_occurrence_and_goes_on(start_server):
    server = start_server("--agents", "1")
    (server.cwd / "a.txt").write_text("a")
    # Far enough ahead for the submission and the pause to come first on a loaded machine.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    submitted = server.cli_json(
        "submit", "--every", "minute", "--start", start.isoformat(),
        "local:a.txt", "local:out",
    )  # fmt: skip
    tid = submitted["id"]
    events = Events(server, "run.skipped", "transfer.paused", "transfer.resumed")
    paused_at = datetime.fromisoformat(server.cli_json("pause", tid)["paused_at"])
    assert paused_at < start, "the machine took too long to pause before the occurrence"
    wait_for(lambda: events.of("transfer.paused"), timeout=10)

    [skipped] = wait_for(lambda: server.cli_json("runs", tid), timeout=60)
    assert (skipped["status"], skipped["number"]) == ("SKIPPED", 1)
    assert datetime.fromisoformat(skipped["due_at"]) == start
    assert skipped["started_at"] is None
    [event] = wait_for(lambda: events.of("run.skipped"), timeout=10)
    assert (event["transfer"], event["run"]) == (tid, 1)
    paused = transfer(server, tid)
    assert paused["status"] == "STANDBY"
    assert datetime.fromisoformat(paused["next_run_at"]) == start + timedelta(minutes=1)
    assert not (server.cwd / "out").exists()  # nothing ran

    server.cli("resume", tid, check=True)
    wait_for(lambda: events.of("transfer.resumed"), timeout=10)
    resumed = transfer(server, tid)  # the next occurrence, not a run of the skipped one
    assert (resumed["status"], resumed["runs"], resumed["paused_at"]) == ("STANDBY", 1, None)
    assert datetime.fromisoformat(resumed["next_run_at"]) == start + timedelta(minutes=1)
    assert len(server.cli_json("runs", tid)) == 1


def test_a_paused_agent_finishes_what_it_holds_and_takes_nothing(start_server):
    server = start_server("--agents", "1", "--heartbeat", "0.5")
    tid = slow_transfer(server, "local:out")["id"]
    wait_for(lambda: readers_of(server, server.cwd / "in" / "big.bin"), timeout=30)
    [agent] = server.agents()

    paused = server.cli_json("agent", "pause", agent["name"])
    assert paused["paused_at"] is not None
    listed = server.cli("agents", check=True).stdout
    assert "(paused)" in listed
    wait_for(lambda: objects(server, tid)["big.bin"]["status"] == "DONE", timeout=30)
    two_heartbeats_later(server)
    held = objects(server, tid)
    assert {name: held[name]["status"] for name in SMALL} == dict.fromkeys(SMALL, "QUEUED")
    assert server.agents()[0]["active"] == 0

    user = server.cli("agent", "resume", "no-such-agent")
    assert user.returncode == 1
    assert "not found" in user.stderr
    server.cli("agent", "resume", agent["name"], check=True)
    check_each_moved_once(server, tid, server.cwd / "out")
