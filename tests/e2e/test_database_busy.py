"""The database locked by another process: the API answers 503 with Retry-After within its
bound, /healthz says why, the log has one line for it, and all is well once it is free again.
(An external lock held 45 s made a POST wait 40 s and answer 500, a traceback each time.)"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time

import httpx
from e2e_support import ServerProcess, wait_for


def test_a_locked_database_is_a_prompt_503_and_one_log_line(start_server) -> None:
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


def test_a_locked_postgresql_table_is_a_prompt_503(start_server, postgres_url: str) -> None:
    """The same on PostgreSQL: another session holding a lock made a POST wait as long as the
    lock was held."""
    import psycopg
    from sqlalchemy.engine import make_url

    server: ServerProcess = start_server("--agents", "0", "--db", postgres_url)
    (server.cwd / "a.txt").write_text("a")
    body = {"sources": ["local:a.txt"], "destination": "local:out"}
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(plain) as holder:
        holder.execute("LOCK TABLE transfers IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        answer = server.api("POST", "/api/v1/transfers", json=body)
        took = time.monotonic() - started
        holder.rollback()

    assert took <= 6, f"answered after {took:.1f} s"
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert "lock timeout" in answer.json()["detail"]
    wait_for(lambda: httpx.get(server.url + "/healthz", timeout=30).status_code == 200, timeout=15)
    assert server.api("POST", "/api/v1/transfers", json=body).status_code == 201
    assert "/api/v1/transfers crashed" not in server.log.read_text()


def test_a_full_data_disk_is_a_503_and_one_log_line(start_server, tmp_path) -> None:
    """A full data disk gave 87 of 90 POSTs a 500 and a traceback each, while /healthz said
    200. The data directory here is a small tmpfs, filled up."""
    data = tmp_path / "work0" / ".ferry"  # where start_server's first server keeps its data
    data.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], check=True)
    try:
        server: ServerProcess = start_server("--agents", "0")
        (server.cwd / "a.txt").write_text("a")
        body = {"sources": ["local:a.txt"], "destination": "local:out"}
        assert server.api("POST", "/api/v1/transfers", json=body).status_code == 201
        filler = data / "filler"
        # The suppress outside the file: its close flushes what the last write left buffered,
        # and that fails on the full disk too.
        with contextlib.suppress(OSError), filler.open("wb") as out:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        answers = []  # what the journal's free pages still hold goes in, then 503s
        while len(answers) < 300 and [a.status_code for a in answers[-3:]] != [503] * 3:
            answers.append(server.api("POST", "/api/v1/transfers", json=body))
        health = httpx.get(server.url + "/healthz", timeout=30)
        filler.unlink()

        assert {a.status_code for a in answers} <= {201, 503}, [a.text for a in answers]
        refused = [a for a in answers if a.status_code == 503]
        assert len(refused) >= 3
        assert all(a.headers["Retry-After"] == "5" for a in refused)
        assert "full" in refused[0].json()["detail"]
        assert health.status_code == 503
        wait_for(lambda: httpx.get(server.url + "/healthz", timeout=30).status_code == 200)
        assert server.api("POST", "/api/v1/transfers", json=body).status_code == 201
        log = server.log.read_text()
        assert log.count("the database cannot serve requests: database or disk is full") == 1
        assert "Traceback" not in log
    finally:
        subprocess.run(["umount", "-l", str(data)], check=True)
