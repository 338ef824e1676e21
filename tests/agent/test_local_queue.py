"""The agent's local queue: what it holds runs in the scheduler's order, not the lease order."""

from __future__ import annotations

import asyncio

import pytest

from ferry.agent.local_queue import FairQueue


def drain(queue: FairQueue[str]) -> list[str]:
    taken = []
    while not queue.empty():
        taken.append(queue.get_nowait())
    return taken


async def test_a_scope_leased_later_alternates_with_the_one_held_before_it() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(300):
        queue.put_nowait(f"a{n}", scope="alpha", priority=3)
    for n in range(3):
        queue.put_nowait(f"b{n}", scope="beta", priority=3)

    taken = drain(queue)

    assert taken[:6] in (
        ["a0", "b0", "a1", "b1", "a2", "b2"],
        ["b0", "a0", "b1", "a1", "b2", "a2"],
    )
    assert taken[6:] == [f"a{n}" for n in range(3, 300)]


async def test_weights_share_the_slots_between_scopes() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(40):
        queue.put_nowait(f"a{n}", scope="alpha", priority=3, weight=3)
        queue.put_nowait(f"b{n}", scope="beta", priority=3, weight=1)

    first = drain(queue)[:20]

    assert sum(item.startswith("a") for item in first) == 15


async def test_priority_is_strict_inside_a_scope_and_lease_order_breaks_ties() -> None:
    queue: FairQueue[str] = FairQueue()
    for name, priority in [("p3-first", 3), ("p1", 1), ("p5", 5), ("p3-second", 3)]:
        queue.put_nowait(name, scope="ops", priority=priority)

    assert drain(queue) == ["p5", "p3-first", "p3-second", "p1"]


async def test_get_waits_for_an_item_and_get_nowait_refuses_on_empty() -> None:
    queue: FairQueue[str] = FairQueue()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()

    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.put_nowait("x", scope="s", priority=3)

    assert await asyncio.wait_for(waiter, 5) == "x"
    assert queue.empty()
    assert queue.qsize() == 0
