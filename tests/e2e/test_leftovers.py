"""Temporary files of interrupted attempts (defect 18.12): an attempt killed mid-copy leaves its
temporary file; when no later attempt comes to remove it (out of attempts, canceled), the
server removes it once the run ends."""

from __future__ import annotations

import os
import signal

from e2e_support import readers_of, wait_for


def test_a_killed_last_attempt_leaves_no_temporary_file(start_server) -> None:
    server = start_server("--heartbeat", "0.5")
    source = server.cwd / "big.bin"
    source.write_bytes(os.urandom(48 * 1024 * 1024))
    out = server.cwd / "out"
    transfer = server.cli_json(
        "submit",
        *("--retries", "0", "--checksum", "none", "--bandwidth", "16M"),
        *("local:big.bin", "local:out/"),
    )
    (part,) = wait_for(lambda: list(out.glob(".*.part")) if out.is_dir() else [], interval=0.01)
    (agent,) = wait_for(lambda: readers_of(server, source))
    os.kill(agent, signal.SIGKILL)

    ended = wait_for(
        lambda: (s := server.cli_json("status", transfer["id"]))["status"] == "FAILED" and s,
        timeout=60,
    )
    (outcome,) = server.cli_json("outcomes", ended["id"])["objects"]
    assert outcome["attempts"] == 1
    assert "exited" in outcome["error"]
    wait_for(lambda: not part.exists(), timeout=15)
    assert list(out.iterdir()) == []
    assert "temporary files of lost attempts removed: 1" in server.log.read_text()
