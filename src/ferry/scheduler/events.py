"""The in-process event bus behind ``GET /api/v1/events``: every subscriber has a bounded
queue; one that falls too far behind is told so and dropped rather than slowing the server.

Events are published by the server that saw the change; with several servers on one
PostgreSQL, each event is also relayed to the others (``scheduler/cluster.py``), so a
subscriber of any server sees what every server and its agents did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Collection
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
        # Each subscriber's queue, with the kinds it wants (None: every kind).
        self._subscribers: dict[asyncio.Queue[object], frozenset[str] | None] = {}
        self._queue_size = queue_size
        self.relay: Callable[[Event], None] | None = None  # to the other servers, if any

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def wants(self, kind: str) -> bool:
        """Whether any subscriber takes events of ``kind``: a publisher need not build those
        nobody reads (a batch of task changes per report, for a stream that follows only a
        transfer's status)."""
        if self.relay is not None:  # a subscriber of another server may
            return True
        return any(kinds is None or kind in kinds for kinds in self._subscribers.values())

    def publish(self, event: Event) -> None:
        self.publish_here(event)
        if self.relay is not None:
            self.relay(event)

    def publish_here(self, event: Event) -> None:
        """Publish to this server's subscribers only (what another server told it)."""
        for queue, kinds in list(self._subscribers.items()):
            if kinds is not None and event.kind not in kinds:
                continue
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._end(queue, _LAGGED)

    async def subscribe(
        self, transfer: str | None = None, kinds: Collection[str] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Events from now on, those of ``transfer`` only and of ``kinds`` only when given,
        until the caller stops iterating or falls behind (then a final ``Lagged``)."""
        queue: asyncio.Queue[object] = asyncio.Queue(self._queue_size)
        self._subscribers[queue] = frozenset(kinds) if kinds is not None else None
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
            self._subscribers.pop(queue, None)

    def lag_all(self) -> None:
        """Tell every subscriber it may have missed events (then end its stream): this server
        was cut off from the others' for a while."""
        for queue in list(self._subscribers):
            self._end(queue, _LAGGED)

    def close(self) -> None:
        """Wake every subscriber so that its stream ends (the server is stopping)."""
        for queue in list(self._subscribers):
            self._end(queue, _CLOSED)

    def _end(self, queue: asyncio.Queue[object], why: object) -> None:
        self._subscribers.pop(queue, None)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(why)
