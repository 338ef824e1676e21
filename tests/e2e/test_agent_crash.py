"""An agent killed in the middle of a transfer: restarted, its work redone, nothing torn."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

from e2e_support import processes_mentioning, wait_for

FILES = 200
SIZE = 4 * 1024 * 1024


def make_files(root: Path) -> dict[str, str]:
    root.mkdir()
    digests = {}
    block = os.urandom(64 * 1024)
    for i in range(FILES):
        data = i.to_bytes(4, "big") + block * (SIZE // len(block))
        (root / f"file {i:03d}.bin").write_bytes(data)
        digests[f"file {i:03d}.bin"] = hashlib.sha256(data).hexdigest()
    return digests


def agent_pids(server, name: str) -> list[int]:
    return processes_mentioning(f"--server {server.url} --name {name} ")


def test_a_killed_agent_is_restarted_and_the_transfer_completes(start_server) -> None:
    server = start_server("--heartbeat", "0.5")
    digests = make_files(server.cwd / "src")
    (victim,) = wait_for(lambda: agent_pids(server, "local-1"))
    wait_for(
        lambda: len([a for a in server.agents() if a["state"] in ("REGISTERED", "ALIVE")]) == 2
    )

    transfer = server.cli_json("submit", "--tree", "local:src", "local:dst")
    progress = f"/api/v1/transfers/{transfer['id']}"
    wait_for(lambda: server.api("GET", progress).json()["objects"]["done"] >= 1, interval=0.005)
    os.kill(victim, signal.SIGKILL)

    (successor,) = wait_for(lambda: [p for p in agent_pids(server, "local-1") if p != victim])
    final = wait_for(
        lambda: (
            (t := server.cli_json("status", transfer["id"]))["status"] not in ("STANDBY", "ONGOING")
            and t
        ),
        timeout=120,
    )
    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == FILES
    copied = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (server.cwd / "dst").iterdir()
    }
    assert copied == digests  # every file whole, and no temporary file left beside them
    objects = server.cli_json("outcomes", transfer["id"])["objects"]
    interrupted = [o for o in objects if o["attempts"] > 1]
    assert interrupted, "the killed agent held no lease: the test did not exercise the crash"
    assert all("exited" in o["history"][0]["error"] for o in interrupted)
    assert successor != victim
    assert "child local-1 exited with status -9" in server.log.read_text()
