"""Helpers for the tests of several servers on one PostgreSQL database: servers with their
agents up, mock storages, and the database read directly while they work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from daemon_support import ALIVE
from e2e_support import ServerProcess, wait_for

from ferry.store.sql_watch import libpq_url


def cluster(
    start_server: Callable[..., ServerProcess], postgres_url: str, nodes: int, *extra: str
) -> list[ServerProcess]:
    """``nodes`` servers of two agents each on the database, once every agent is alive."""
    servers = [start_server("--db", postgres_url, "--agents", "2", *extra) for _ in range(nodes)]
    alive = lambda: sum(a["state"] in ALIVE for a in servers[0].agents()) == 2 * nodes  # noqa: E731
    wait_for(alive, timeout=60)
    return servers


def mock_storages(server: ServerProcess, **source: Any) -> None:
    """``mk``, a mock tree of ``source``'s options, and ``sink``, a mock destination."""
    for name, url, given in (("mk", "mock://any", source), ("sink", "mock://sink", {})):
        body = {"name": name, "url": url, "options": given}
        server.api("POST", "/api/v1/storages", json=body).raise_for_status()


class Sampler(threading.Thread):
    """Runs ``query`` (one number) on the database every 100 ms, keeping (time, value)."""

    def __init__(self, url: str, query: str) -> None:
        super().__init__(daemon=True)
        self.url, self.query = libpq_url(url), query
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.halt.wait(0.1):
                row = conn.execute(self.query).fetchone()
                self.samples.append((time.monotonic(), int(row[0]) if row else 0))

    def values(self) -> list[int]:
        return [value for _, value in self.samples]

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def one_value(url: str, query: str, *parameters: Any) -> Any:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(query, parameters).fetchone()
