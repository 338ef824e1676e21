"""The pulse that wakes long-polling leases when work arrives."""

from __future__ import annotations

import asyncio

from ferry.scheduler.loop import Pulse


async def test_a_fire_wakes_every_waiter() -> None:
    pulse = Pulse()
    waiters = [asyncio.create_task(pulse.wait(pulse.watch(), 5)) for _ in range(3)]
    await asyncio.sleep(0)  # all three are waiting
    pulse.fire()
    assert await asyncio.gather(*waiters) == [True, True, True]


async def test_a_fire_during_the_look_for_work_is_not_missed_by_a_watcher() -> None:
    pulse = Pulse()
    fired = pulse.watch()
    pulse.fire()  # work arrived while the lease was looking and finding nothing
    assert await pulse.wait(fired, 5) is True


async def test_a_waiter_that_came_after_the_fire_waits_for_the_next() -> None:
    pulse = Pulse()
    pulse.fire()
    assert await pulse.wait(pulse.watch(), 0.05) is False
    later = asyncio.create_task(pulse.wait(pulse.watch(), 5))
    await asyncio.sleep(0)
    pulse.fire()
    assert await later is True
