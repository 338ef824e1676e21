"""The database locked by another process: the API answers 503 with Retry-After within its
bound, /healthz says why, the log has one line for it, and all is well once it is free again.
(An external lock held 45 s made a POST wait 40 s and answer 500, a traceback each time.)"""

from __future__ import annotations

import sqlite3
import time

import httpx
from e2e_support import ServerProcess, wait_for


def test_a_locked_database_is_a_prompt_503_and_one_log_line(start_server) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = start_server("--agents", "0")
    (server.cwd / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:out"}
    holder = sqlite3.connect(server.cwd / ".ferry" / "ferry.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answers = []
        for _ in range(3):
            started = time.monotonic()
            answer = server.api("POST", "/api/v1/transfers", json=body)
            answers.append((answer, time.monotonic() - started))
        health = httpx.get(server.url + "/healthz", timeout=30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    for answer, took in answers:
        assert took <= 6, f"answered after {took:.1f} s"
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert answer.headers["content-type"] == "application/problem+json"
        assert "locked" in answer.json()["detail"]
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert "locked" in health.json()["store"]

    # Free again: within its Retry-After the server takes writes once more.
    wait_for(lambda: httpx.get(server.url + "/healthz", timeout=30).status_code == 200, timeout=15)
    assert server.api("POST", "/api/v1/transfers", json=body).status_code == 201
    log = server.log.read_text()
    assert log.count("the database cannot serve requests: database is locked") == 1
    assert "/api/v1/transfers crashed" not in log
