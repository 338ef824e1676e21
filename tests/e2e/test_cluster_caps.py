"""Three servers and six agents on one PostgreSQL database under a channel of max-active 12
(issue 22, acceptance 1): the active units, sampled every 100 ms in the database, never exceed
12, and every one of 20,000 objects is DONE exactly once."""

from __future__ import annotations

import threading

import psycopg
from daemon_support import ALIVE, wait_final
from e2e_support import ServerProcess, wait_for

from ferry.scheduler.cluster import libpq_url

MAX_ACTIVE = 12
FOLDERS, FILES = 100, 200  # 20,000 objects
TAKES_S = 0.005  # each object's open: enough that the agents' 48 slots would overrun the cap


class ActiveSampler(threading.Thread):
    """Counts the ACTIVE rows (a carrier counts one, as the cap does) every 100 ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = libpq_url(url)
        self.samples: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.halt.wait(0.1):
                row = conn.execute("SELECT count(*) FROM tasks WHERE state = 'ACTIVE'").fetchone()
                self.samples.append(int(row[0]) if row else 0)


def test_three_servers_keep_a_channels_max_active_and_move_each_object_once(  # type: ignore[no-untyped-def]
    start_server, postgres_url: str
) -> None:
    servers: list[ServerProcess] = [
        start_server("--db", postgres_url, "--agents", "2") for _ in range(3)
    ]
    first, second, third = servers
    alive = lambda: sum(a["state"] in ALIVE for a in first.agents()) == 6  # noqa: E731
    wait_for(alive, timeout=60)
    first.cli("channel", "set", "*", "*", "--max-active", str(MAX_ACTIVE), check=True)
    options = {"folders": FOLDERS, "files": FILES, "time": TAKES_S}
    for name, url, given in (("mk", "mock://any", options), ("sink", "mock://sink", {})):
        body = {"name": name, "url": url, "options": given}
        second.api("POST", "/api/v1/storages", json=body).raise_for_status()

    sampler = ActiveSampler(postgres_url)
    sampler.start()
    try:
        submitted = second.cli_json("submit", "--tree", "mk:batch", "sink:out")
        done = wait_final(third, submitted["id"], timeout=300)
    finally:
        sampler.halt.set()
        sampler.join(10)

    assert done["status"] == "COMPLETED", done
    assert done["objects"]["done"] == done["objects"]["total"] == FOLDERS * FILES
    assert max(sampler.samples) <= MAX_ACTIVE, sorted(sampler.samples)[-20:]
    assert max(sampler.samples) >= MAX_ACTIVE - 2  # the cap was what held them back
    with psycopg.connect(libpq_url(postgres_url)) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT object) FROM outcomes WHERE state = 'DONE'"
        ).fetchone()
        moved_twice = conn.execute("SELECT count(*) FROM outcomes WHERE state <> 'DONE'").fetchone()
    assert row == (FOLDERS * FILES, FOLDERS * FILES)
    assert moved_twice == (0,)
