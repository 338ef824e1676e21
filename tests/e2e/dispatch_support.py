"""Helpers for the dispatch tests: mock storages, submissions, and the server's task table read
from the outside (a read-only SQLite connection, as an operator's query would)."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from types import TracebackType
from typing import Any

from e2e_support import ServerProcess, wait_for

RUNNING = ("STANDBY", "ONGOING")


def add_mock(server: ServerProcess, name: str, site: str, **options: object) -> None:
    """A ``mock://`` storage at ``site``: a source of zero bytes, or a sink."""
    flags = [part for k, v in options.items() for part in ("--option", f"{k}={v}")]
    server.cli("storage", "add", name, f"mock://{name}", "--site", site, *flags, check=True)


def submit(
    server: ServerProcess, source: str, destination: str, *, scope: str, priority: int = 3
) -> str:
    """Submit a tree through the API: a CLI subprocess takes longer to start than the mock
    objects take to move, and these tests measure what arrives "a moment later"."""
    body = {
        "sources": [source],
        "destination": destination,
        "kind": "tree",
        "scope": scope,
        "options": {"priority": priority},
    }
    response = server.api("POST", "/api/v1/transfers", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait_finished(server: ServerProcess, transfer_id: str, timeout: float) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        transfer: dict[str, Any] = server.api("GET", f"/api/v1/transfers/{transfer_id}").json()
        return None if transfer["status"] in RUNNING else transfer

    result: dict[str, Any] = wait_for(finished, timeout=timeout, interval=0.5)
    return result


def stamp(value: str) -> datetime:
    """A timestamp column as SQLAlchemy writes it on SQLite (naive UTC)."""
    return datetime.fromisoformat(value)


class TaskDb:
    """The server's database, opened read-only beside the running server (WAL: readers never
    block it)."""

    def __init__(self, server: ServerProcess) -> None:
        path = server.cwd / ".ferry" / "ferry.db"
        self.connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def __enter__(self) -> TaskDb:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.connection.close()

    def rows(self, sql: str, *params: object) -> list[Any]:
        with self.connection:  # each query sees a fresh snapshot
            return self.connection.execute(sql, params).fetchall()

    def scalar(self, sql: str, *params: object) -> Any:
        return self.rows(sql, *params)[0][0]

    def held_objects(self, agent_id: str) -> dict[int, int]:
        """The objects whose lease ``agent_id`` holds now, by number, with the attempt: a single
        task's own, each object a carrier carries (its members, or its whole chunk list)."""
        rows = self.rows(
            "SELECT t.object, t.attempts, t.origin, t.members, c.count FROM tasks t"
            " LEFT JOIN chunks c ON c.transfer_id = t.transfer_id AND c.run = t.run"
            " AND c.first = t.origin WHERE t.state = 'ACTIVE' AND t.lease_agent = ?",
            agent_id,
        )
        held = {}
        for number, attempt, origin, members, count in rows:
            if origin is None:
                held[number] = attempt
                continue
            offsets = json.loads(members) if members else range(count)
            held.update((origin + offset, attempt) for offset in offsets)
        return held

    def done_at(self, transfer_id: str) -> list[str]:
        """When each object of a transfer was recorded DONE, in order: a single task's row, or
        the outcome of an object a chunk carried."""
        rows = self.rows(
            "SELECT finished_at FROM tasks WHERE transfer_id = ? AND state = 'DONE'"
            " AND origin IS NULL UNION ALL"
            " SELECT finished_at FROM outcomes WHERE transfer_id = ? AND state = 'DONE'"
            " ORDER BY 1",
            transfer_id,
            transfer_id,
        )
        return [row[0] for row in rows]


class ActiveSampler(threading.Thread):
    """Count the ACTIVE tasks every ``period`` seconds from its own read-only connection,
    keeping the highest count seen and how many samples saw any."""

    def __init__(self, server: ServerProcess, period: float = 0.05) -> None:
        super().__init__(name="active-sampler", daemon=True)
        self.server = server
        self.period = period
        self.samples = 0
        self.busy = 0
        self.peak = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            with TaskDb(self.server) as db:
                while not self._halt.wait(self.period):
                    active = db.scalar("SELECT count(*) FROM tasks WHERE state = 'ACTIVE'")
                    self.samples += 1
                    self.busy += active > 0
                    self.peak = max(self.peak, active)
        except BaseException as exc:  # reported by stop(): a thread's error would be lost
            self.error = exc

    def __enter__(self) -> ActiveSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join(timeout=10)
        if self.error is not None:
            raise AssertionError("the sampler failed") from self.error
