"""A tree of small files through real server and agent processes travels in chunks
(docs/small-files.md), and every object keeps its own truth: listed before it is copied,
reported once, back in the queue when its agent dies, stopped by a cancel at an object's
boundary, listed once across a server's crash."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from e2e_support import FERRY, launch, processes_mentioning, shutdown, wait_for

SIZE = 1024


def make_tree(root: Path, files: int) -> dict[str, str]:
    """``files`` small files in 20 folders; their digests by relative path."""
    digests = {}
    block = os.urandom(SIZE)
    for i in range(files):
        relative = f"d{i % 20:02d}/f{i:06d}"
        data = i.to_bytes(8, "big") + block[8:]
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        digests[relative] = hashlib.sha256(data).hexdigest()
    return digests


def copied(root: Path) -> dict[str, str]:
    """Every file under ``root`` (temporary ones included) with its digest."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def carriers(server: Any) -> int:
    """Tasks that carry a chunk, read from the server's own database file."""
    with sqlite3.connect(server.cwd / ".ferry" / "ferry.db") as db:
        return int(db.execute("SELECT count(*) FROM tasks WHERE origin IS NOT NULL").fetchone()[0])


def final(server: Any, transfer: str) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (t := server.cli_json("status", transfer))["status"] not in ("STANDBY", "ONGOING") and t
        ),
        timeout=240,
    )


def outcomes(server: Any, transfer: str, *extra: str) -> list[dict[str, Any]]:
    return list(server.cli_json("outcomes", transfer, *extra)["objects"])


def test_every_object_of_a_chunked_tree_is_queued_then_done_with_its_own_truth(
    start_server,
) -> None:
    server = start_server("--agents", "0")
    digests = make_tree(server.cwd / "src", 10_000)

    transfer = server.cli_json("submit", "--tree", "local:src", "local:dst")["id"]
    wait_for(lambda: server.cli_json("status", transfer)["objects"]["total"] == 10_000)
    listed = outcomes(server, transfer)
    assert len(listed) == 10_000
    assert {o["status"] for o in listed} == {"QUEUED"}
    assert {o["attempts"] for o in listed} == {0}
    assert {o["source"].removeprefix("local:src/") for o in listed} == set(digests)
    assert {o["size"] for o in listed} == {SIZE}
    assert carriers(server) == 20  # 500 objects a chunk, not a task each

    agent = subprocess.Popen(
        [*FERRY, "agent", "--server", server.url, "--name", "remote-1"],
        env={**server.env(), "FERRY_AGENT_TOKEN": server.token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert final(server, transfer)["status"] == "COMPLETED"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    assert copied(server.cwd / "dst") == digests
    done = outcomes(server, transfer)
    assert [o["id"] for o in done] == sorted(o["id"] for o in done)
    assert len({o["id"] for o in done}) == 10_000
    assert {o["status"] for o in done} == {"DONE"}
    assert {o["attempts"] for o in done} == {1}
    assert all(o["checksum"] and o["checksum"].startswith("adler32:") for o in done)
    assert {o["destination"].removeprefix("local:dst/") for o in done} == set(digests)


def test_a_killed_agent_s_unreported_objects_come_back_lost_and_reported_ones_stay(
    start_server,
) -> None:
    ttl = 3.0
    server = start_server("--agents", "1", "--heartbeat", "0.5", "--lease-ttl", str(ttl))
    digests = make_tree(server.cwd / "src", 20_000)
    (victim,) = wait_for(lambda: processes_mentioning(f"--server {server.url} --name local-1 "))

    transfer = server.cli_json("submit", "--tree", "local:src", "local:dst")["id"]
    progress = f"/api/v1/transfers/{transfer}"
    wait_for(lambda: server.api("GET", progress).json()["objects"]["done"] >= 1, interval=0.005)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()

    assert final(server, transfer)["status"] == "COMPLETED"
    assert copied(server.cwd / "dst") == digests  # whole, and no temporary file left
    objects = outcomes(server, transfer)
    assert len(objects) == 20_000
    assert {o["status"] for o in objects} == {"DONE"}
    lost = [o for o in objects if any(h["state"] == "LOST" for h in o["history"])]
    assert lost, "the killed agent held no chunk: the test did not exercise the crash"
    for o in objects:  # reported once: never copied or counted again
        assert [h["state"] for h in o["history"]].count("DONE") == 1
        assert o["history"][-1]["state"] == "DONE"
    back = max(min(h["finished_at"] for h in o["history"] if h["state"] == "LOST") for o in lost)
    assert datetime.fromisoformat(back).timestamp() - killed_at <= ttl + 2 + 1


def test_a_cancel_stops_a_chunked_tree_at_an_object_boundary(start_server) -> None:
    server = start_server("--agents", "1")
    digests = make_tree(server.cwd / "src", 20_000)

    transfer = server.cli_json("submit", "--tree", "local:src", "local:dst")["id"]
    progress = f"/api/v1/transfers/{transfer}"
    wait_for(lambda: server.api("GET", progress).json()["objects"]["done"] >= 1, interval=0.005)
    server.cli("cancel", transfer, check=True)

    ended = final(server, transfer)
    assert ended["status"] == "CANCELED"
    counts = ended["objects"]
    assert counts["canceled"] > 0
    assert counts["done"] + counts["canceled"] == counts["total"]  # what was listed by then
    landed = copied(server.cwd / "dst")
    assert len(landed) == counts["done"]
    assert all(digests.get(path) == digest for path, digest in landed.items())  # no partial file
    objects = outcomes(server, transfer)
    assert {o["status"] for o in objects} == {"DONE", "CANCELED"}


def test_a_server_killed_mid_listing_lists_each_object_once_after_its_restart(
    start_server,
) -> None:
    files = 40_000
    server = start_server("--agents", "0")
    digests = make_tree(server.cwd / "src", files)

    transfer = server.cli_json("submit", "--tree", "local:src", "local:dst")["id"]
    progress = f"/api/v1/transfers/{transfer}"
    listed = wait_for(
        lambda: (n := server.api("GET", progress).json()["objects"]["total"]) > 0 and n,
        interval=0.005,
    )
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    assert listed < files, "the listing ended before the kill: the test did not exercise it"

    again = launch(server.cwd, "--agents", "2")
    try:
        assert final(again, transfer)["status"] == "COMPLETED"
        objects = outcomes(again, transfer)
    finally:
        shutdown(again)
    assert len(objects) == files
    assert len({o["id"] for o in objects}) == files
    assert sorted(o["source"].removeprefix("local:src/") for o in objects) == sorted(digests)
    assert copied(server.cwd / "dst") == digests
