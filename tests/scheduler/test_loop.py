"""What every loop shares: a failed look at the database costs a second, not an interval."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from ferry.scheduler.due import MAX_SLEEP_S, DueLoop
from ferry.scheduler.loop import Wakeups
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

    store.next_due_at = next_due_at_failing_once  # type: ignore[method-assign]
    loop = DueLoop(store, Wakeups())
    passes: list[float] = []
    real_run_once = loop.run_once

    async def counted_run_once() -> None:
        passes.append(time.monotonic())
        await real_run_once()

    loop.run_once = counted_run_once  # type: ignore[method-assign]
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
