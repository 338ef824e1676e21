"""Fair dispatch (DESIGN §4): which queued tasks an agent gets next.

Strict priority inside a scope, smooth weighted round-robin across scopes, round-robin across
the channels of a scope at equal priority, oldest first within a priority. Each channel's room
(``max_active`` minus what is active now, across every agent) is never exceeded.

The dispatcher remembers the round-robin credits between calls, so a lease of one task at a
time still alternates between scopes; losing them (a restart) only restarts the rotation.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

Pair = tuple[str, str]  # (source site, destination site)
QueueKey = tuple[str, str, str]  # (scope, source site, destination site)


class Queued(NamedTuple):
    """A queued task as the dispatcher sees it; a tuple, made from each row of a queue's head
    (up to a lease's limit, a thousand, per queue) at a tuple's cost."""

    id: int
    priority: int


@dataclass(slots=True)
class _Queue:
    key: QueueKey
    channel: Pair | None  # the governing channel's key; None when unconstrained
    items: Sequence[Queued]
    next: int = 0

    @property
    def head(self) -> Queued | None:
        return self.items[self.next] if self.next < len(self.items) else None


class FairDispatcher:
    def __init__(self) -> None:
        self._credit: dict[str, float] = {}
        self._served = itertools.count()
        self._last_served: dict[QueueKey, int] = {}

    def pick(
        self,
        queues: Mapping[QueueKey, Sequence[Queued]],
        channel_of: Mapping[QueueKey, Pair | None],
        room: dict[Pair, int],
        weights: Mapping[str, int],
        limit: int,
    ) -> list[int]:
        """Up to ``limit`` task ids, in dispatch order. ``queues`` holds each queue's head
        (priority high first, then oldest); ``room`` is consumed as tasks are picked."""
        state = [_Queue(key, channel_of.get(key), items) for key, items in queues.items()]
        picked: list[int] = []
        while len(picked) < limit:
            ready = [q for q in state if q.head is not None and _has_room(q, room)]
            if not ready:
                break
            if len(ready) == 1:  # one queue left to serve: the rest of it in one step
                picked += self._serve_alone(ready[0], room, limit - len(picked))
                break
            scope = self._next_scope({q.key[0] for q in ready}, weights)
            queue = self._best_queue([q for q in ready if q.key[0] == scope])
            head = queue.head
            assert head is not None
            picked.append(head.id)
            queue.next += 1
            self._last_served[queue.key] = next(self._served)
            if queue.channel is not None:
                room[queue.channel] -= 1
        return picked

    def _serve_alone(self, queue: _Queue, room: dict[Pair, int], wanted: int) -> list[int]:
        if queue.channel is not None:
            wanted = min(wanted, room[queue.channel])
        taken = queue.items[queue.next : queue.next + wanted]
        queue.next += len(taken)
        if queue.channel is not None:
            room[queue.channel] -= len(taken)
        # A scope served alone earns its weight and pays it back: its credit does not move.
        self._last_served[queue.key] = next(self._served)
        return [item.id for item in taken]

    def _next_scope(self, scopes: set[str], weights: Mapping[str, int]) -> str:
        """Smooth weighted round-robin: every ready scope earns its weight, the richest is
        served and pays the total."""
        total = 0
        for scope in scopes:
            weight = max(1, weights.get(scope, 1))
            self._credit[scope] = self._credit.get(scope, 0.0) + weight
            total += weight
        chosen = max(sorted(scopes), key=lambda s: self._credit[s])
        self._credit[chosen] -= total
        return chosen

    def _best_queue(self, queues: list[_Queue]) -> _Queue:
        """Highest head priority; among equals, the queue served longest ago, then the oldest."""

        def rank(q: _Queue) -> tuple[int, int, int]:
            head = q.head
            assert head is not None
            return (-head.priority, self._last_served.get(q.key, -1), head.id)

        return min(queues, key=rank)


def _has_room(queue: _Queue, room: Mapping[Pair, int]) -> bool:
    return queue.channel is None or room.get(queue.channel, 0) > 0
