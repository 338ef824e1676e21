"""What every loop shares: a failed look at the database costs a second, not an interval, and
one line in the log a minute per cause."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy.exc import OperationalError

from ferry.scheduler.due import MAX_SLEEP_S, DueLoop
from ferry.scheduler.loop import Loop, Wakeups
from ferry.store.sql import SqlStore


async def test_a_due_loop_whose_delay_failed_looks_again_within_seconds(store: SqlStore) -> None:
    # Seen under load: the due loop woke, its read of the next due time failed, and it slept
    # a whole interval (a minute) past the time a periodic transfer's next run was due.
    failures = ["database is locked"]
    real_next_due_at = store.next_due_at

    async def next_due_at_failing_once() -> datetime | None:
        if failures:
            raise RuntimeError(failures.pop())
        return await real_next_due_at()

    store.next_due_at = next_due_at_failing_once
    loop = DueLoop(store, Wakeups())
    passes: list[float] = []
    real_run_once = loop.run_once

    async def counted_run_once() -> None:
        passes.append(time.monotonic())
        await real_run_once()

    loop.run_once = counted_run_once
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run_forever(stop))
    deadline = time.monotonic() + MAX_SLEEP_S / 4
    while len(passes) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await running
    assert not failures  # the failure happened
    assert len(passes) >= 2, "the loop slept an interval after its delay failed"
    assert passes[1] - passes[0] <= 2 * loop.retry_s


class _FailingLoop(Loop):
    """A loop each pass of which the database fails, with ``causes`` in turn."""

    name = "failing"
    interval = 0.01

    def __init__(self, store: SqlStore, causes: list[str]) -> None:
        super().__init__(store, Wakeups())
        self.causes = causes
        self.passes = 0

    async def run_once(self) -> None:
        self.passes += 1
        cause = self.causes[min(self.passes, len(self.causes)) - 1]
        raise OperationalError("UPDATE scopes", {}, Exception(cause))


async def test_a_loop_logs_each_cause_of_database_trouble_once_a_minute(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL stopped 30 s: every loop logged a line at each pass, the notify loop 32.
    loop = _FailingLoop(store, ["connection refused"] * 20 + ["the database is starting up"])
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run_forever(stop))
    deadline = time.monotonic() + 10
    while loop.passes < 30 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await running

    lines = [r.getMessage() for r in caplog.records if "the database failed it" in r.getMessage()]
    assert loop.passes >= 30
    assert lines == [
        "failing loop: the database failed it: connection refused",
        "failing loop: the database failed it: the database is starting up",
    ]


class _Singleton(Loop):
    """A loop run on one server at a time, telling when it found the database away."""

    name = "lonely"
    interval = 0.01
    singleton = True

    def __init__(self, store: SqlStore) -> None:
        super().__init__(store, Wakeups())
        self.told = 0

    async def run_once(self) -> None:
        raise AssertionError("the lock was not taken: no pass may run")

    def found_database_away(self) -> None:
        self.told += 1


async def test_a_loop_whose_lock_the_database_failed_is_told_it_was_away(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registry loop missed the database's absence when taking its lock failed (PostgreSQL
    # stopped), not its pass, and made every agent LOST on the database's return.
    @contextlib.asynccontextmanager
    async def lock_failed(name: str) -> AsyncIterator[bool]:
        raise OperationalError("SELECT pg_try_advisory_lock", {}, Exception("refused"))
        yield True

    monkeypatch.setattr(store, "singleton", lock_failed)
    loop = _Singleton(store)
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run_forever(stop))
    deadline = time.monotonic() + 10
    while loop.told < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert loop.told >= 3
