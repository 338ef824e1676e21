"""The database away for 30 s mid-transfer (issue 22, items 4 and 5): PostgreSQL stopped, or
SQLite's file locked by another process holding an exclusive transaction. Meanwhile the API
answers 503 with Retry-After; the agents keep their results and heartbeats until it is back;
the server's loops recover without a restart; every object is copied once and ends DONE once,
its file whole, and no lease lapsed for the database's silence.

tests/e2e/test_database_away.py stops PostgreSQL for 10 s under mock objects; here real files
move, for three times as long, with a lease TTL of a fifth of the outage."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from chaos_check import no_part_files, rclone_check
from chaos_figures import record
from daemon_support import transfer, wait_final
from e2e_support import ServerProcess, wait_for
from retried_outcomes import ended_once_after_retries

from pg_server import PostgresCluster, postgres_cluster

AWAY_S = 30.0
TTL_S = "6"  # every lease held lapses five times over while the database is away
FILES = 160  # of 1 MiB, each copied at 1 MiB/s: sixteen at a time, ten seconds in all
BEFORE = 32  # objects DONE when the database goes away


@dataclass
class Outage:
    """What the server answered while the database was away: a client's read of the transfer
    and ``/healthz`` (which asks for a write), once a second each."""

    reads: int = 0
    reads_503: int = 0  # 503 problem+json with a Retry-After in seconds
    health_503: int = 0
    seconds: float = 0.0


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test's own: it is stopped and started again."""
    with postgres_cluster() as cluster:
        yield cluster


@contextlib.contextmanager
def postgres_stopped(cluster: PostgresCluster) -> Iterator[None]:
    cluster.stop()
    try:
        yield
    finally:
        cluster.start()


@contextlib.contextmanager
def sqlite_locked(database: Path) -> Iterator[None]:
    """Another process's exclusive transaction on the file (this test's, not the server's)."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _source(folder: Path) -> None:
    for number in range(FILES):
        path = folder / f"d{number % 4}" / f"f{number:03}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1024 * 1024))


def _away(server: ServerProcess, transfer_id: str, outage: Outage) -> None:
    """Ask for the transfer and the server's health every second while the database is
    away, counting the 503s."""
    started = time.monotonic()
    while (left := AWAY_S - (time.monotonic() - started)) > 0:
        answer = server.api("GET", f"/api/v1/transfers/{transfer_id}")
        outage.reads += 1
        if answer.status_code == 503:
            assert answer.headers["Retry-After"].isdigit(), answer.headers
            assert answer.headers["Content-Type"] == "application/problem+json"
            outage.reads_503 += 1
        else:
            assert answer.status_code == 200, answer.text
        health = httpx.get(f"{server.url}/healthz", timeout=30)
        assert health.status_code in (200, 503), health.text
        outage.health_503 += health.status_code == 503
        time.sleep(min(1.0, max(left, 0.0)))  # the outage's pace: one question a second
    outage.seconds = time.monotonic() - started


def _through_an_outage(
    server: ServerProcess, away: Callable[[], AbstractContextManager[None]], scenario: str
) -> str:
    """Copy ``FILES`` files while the database goes away for ``AWAY_S`` mid-transfer; check
    the run; record its figures. The transfer's id."""
    source = server.cwd / "src"
    _source(source)
    submitted = server.cli_json("submit", "--tree", "--bandwidth", "1M", "local:src", "local:out")
    done_before = wait_for(
        lambda: (n := transfer(server, submitted["id"])["objects"]["done"]) >= BEFORE and n,
        timeout=60,
        interval=0.1,
    )
    outage = Outage()
    with away():
        _away(server, submitted["id"], outage)
    back = time.monotonic()
    final = wait_final(server, submitted["id"], timeout=120)
    took = time.monotonic() - back

    assert final["status"] == "COMPLETED", final
    assert outage.health_503 > 0, outage
    out = server.cwd / "out"
    assert rclone_check(source, out) == FILES
    no_part_files(out)
    objects = ended_once_after_retries(server, submitted["id"], FILES)
    assert [o for o in objects if len(o["history"]) != 1] == []  # none copied twice
    with httpx.Client() as client:  # the server never restarted
        assert client.get(f"{server.url}/healthz").status_code == 200
    assert server.process.poll() is None
    record(
        scenario,
        objects=FILES,
        done_when_it_went_away=done_before,
        away_s=round(outage.seconds, 1),
        reads_while_away=outage.reads,
        reads_503=outage.reads_503,
        healthz_503=outage.health_503,
        back_to_completed_s=round(took, 1),
        attempts_not_done=0,
    )
    return str(submitted["id"])


@pytest.mark.chaos
def test_postgresql_stopped_30_s_mid_transfer(
    start_server, private_postgres: PostgresCluster
) -> None:
    """PostgreSQL stopped 30 s (lease TTL 6 s) while 160 files of 1 MiB move: reads of the
    API answer 503 with Retry-After; the agents keep their results and no agent is LOST nor
    lease reaped for the silence; the run completes without a restart, each object copied
    once."""
    url = private_postgres.url(private_postgres.create_database())
    server: ServerProcess = start_server(
        "--db", url, "--agents", "2", "--lease-ttl", TTL_S, "--heartbeat", "1"
    )
    _through_an_outage(
        server, lambda: postgres_stopped(private_postgres), "PostgreSQL stopped 30 s"
    )


@pytest.mark.chaos
def test_sqlite_locked_30_s_mid_transfer(start_server) -> None:
    """SQLite's file held 30 s by another process's exclusive transaction (lease TTL 6 s)
    while 160 files of 1 MiB move: /healthz answers 503 (reads go on: WAL); the
    agents keep their results; the run completes without a restart, each object copied once,
    no traceback logged."""
    server: ServerProcess = start_server("--agents", "2", "--lease-ttl", TTL_S, "--heartbeat", "1")
    database = server.cwd / ".ferry" / "ferry.db"
    _through_an_outage(server, lambda: sqlite_locked(database), "SQLite locked 30 s")
    log = server.log.read_text()
    assert "Traceback" not in log
