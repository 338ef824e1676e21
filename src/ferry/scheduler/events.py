"""The in-process event bus behind ``GET /api/v1/events``: every subscriber has a bounded
queue; one that falls too far behind is told so and dropped rather than slowing the server.

Events are published by the server that saw the change; with several servers on one
PostgreSQL, a subscriber sees the changes its own server made (agents' reports, its loops).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from ferry.domain.events import Event

log = logging.getLogger("ferry.api")

QUEUE_SIZE = 10_000
_LAGGED, _CLOSED = object(), object()


@dataclass(frozen=True, slots=True, kw_only=True)
class Lagged(Event):
    """The subscriber missed events: it should read the current state again."""

    kind: ClassVar[str] = "lagged"


class EventBus:
    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._subscribers: set[asyncio.Queue[object]] = set()
        self._queue_size = queue_size

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._end(queue, _LAGGED)

    async def subscribe(self, transfer: str | None = None) -> AsyncGenerator[Event, None]:
        """Events from now on, those of ``transfer`` only when given, until the caller stops
        iterating or falls behind (then a final ``Lagged``)."""
        queue: asyncio.Queue[object] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                event = await queue.get()
                if event is _LAGGED:
                    yield Lagged()
                    return
                if not isinstance(event, Event):
                    return
                if transfer is None or transfer in event.transfer_ids:
                    yield event
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """Wake every subscriber so that its stream ends (the server is stopping)."""
        for queue in list(self._subscribers):
            self._end(queue, _CLOSED)

    def _end(self, queue: asyncio.Queue[object], why: object) -> None:
        self._subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(why)
