"""PostgreSQL stopped mid-transfer for longer than a lease's TTL, then started again (issue 22,
item 4): the API answers 503 with Retry-After meanwhile, the agents keep their results and
heartbeats until it is back, the server's loops go on without a restart, and every object ends
once: none lost, none moved twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from cluster_support import mock_storages, one_value
from daemon_support import transfer, wait_final
from e2e_support import ServerProcess, wait_for

from pg_server import PostgresCluster, postgres_cluster

TTL_S = 6.0
AWAY_S = 10.0  # longer than a lease's TTL: every lease held expires while it is away
FOLDERS, FILES = 40, 100  # 4,000 objects
TAKES_S = 0.01
DONE_ONCE = "SELECT count(*), count(DISTINCT object) FROM outcomes WHERE state = 'DONE'"
NOT_DONE = "SELECT count(*) FROM outcomes WHERE state <> 'DONE'"


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test's own: it is stopped and started again."""
    with postgres_cluster() as cluster:
        yield cluster


def test_the_database_away_longer_than_a_lease_loses_nothing_and_moves_nothing_twice(
    start_server, private_postgres: PostgresCluster
) -> None:
    url = private_postgres.url(private_postgres.create_database())
    server: ServerProcess = start_server(
        "--db", url, "--agents", "2", "--lease-ttl", str(TTL_S), "--heartbeat", "1"
    )
    mock_storages(server, folders=FOLDERS, files=FILES, time=TAKES_S)
    submitted = server.cli_json("submit", "--tree", "mk:batch", "sink:out")
    wait_for(lambda: transfer(server, submitted["id"])["objects"]["done"] >= 200, timeout=60)

    private_postgres.stop()
    stopped_at = time.monotonic()
    away = server.api("GET", f"/api/v1/transfers/{submitted['id']}")
    assert away.status_code == 503, away.text
    assert away.headers["Retry-After"].isdigit()
    assert away.headers["Content-Type"] == "application/problem+json"
    time.sleep(max(0.0, AWAY_S - (time.monotonic() - stopped_at)))  # the outage's length
    private_postgres.start()

    done = wait_final(server, submitted["id"], timeout=120)
    assert done["status"] == "COMPLETED", done
    assert done["objects"]["done"] == done["objects"]["total"] == FOLDERS * FILES
    assert one_value(url, DONE_ONCE) == (FOLDERS * FILES, FOLDERS * FILES)
    assert one_value(url, NOT_DONE) == (0,)  # no lease expired for the database's silence
    with httpx.Client() as client:  # the server never restarted
        assert client.get(f"{server.url}/healthz").status_code == 200
    assert server.process.poll() is None
