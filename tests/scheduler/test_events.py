"""The event bus: each subscriber gets the events of its transfer and kinds, and a publisher
can tell whether anyone takes a kind at all."""

from __future__ import annotations

import asyncio

from ferry.domain.events import TasksChanged, TransferChanged
from ferry.scheduler.events import EventBus


async def test_a_subscriber_of_some_kinds_gets_those_only() -> None:
    bus = EventBus()
    status_only = bus.subscribe("t1", kinds=["transfer"])
    first = asyncio.ensure_future(anext(status_only))
    await asyncio.sleep(0)  # one turn: the subscriber's queue is in place
    bus.publish(TasksChanged(transfer="t1", changes=[{"task": 1, "state": "DONE"}]))
    bus.publish(TransferChanged(transfer="t1", status="COMPLETED"))
    event = await first
    assert isinstance(event, TransferChanged)
    assert event.status == "COMPLETED"
    await status_only.aclose()
    assert bus.subscribers == 0


async def test_a_kind_is_wanted_while_someone_takes_it() -> None:
    bus = EventBus()
    assert not bus.wants("tasks")
    status_only = bus.subscribe(kinds=["transfer"])
    pending = asyncio.ensure_future(anext(status_only))
    await asyncio.sleep(0)
    assert bus.wants("transfer")
    assert not bus.wants("tasks")
    everything = bus.subscribe()
    other = asyncio.ensure_future(anext(everything))
    await asyncio.sleep(0)
    assert bus.wants("tasks")
    for waiting, subscription in ((pending, status_only), (other, everything)):
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await subscription.aclose()
    assert not bus.wants("transfer")
