"""Fair dispatch (DESIGN §4): which queued tasks an agent gets next.

Strict priority inside a scope, smooth weighted round-robin across scopes, round-robin across
the channels of a scope at equal priority, oldest first within a priority. Each channel's room
(``max_active`` minus what is active now, across every agent) is never exceeded.

The dispatcher remembers the round-robin credits between calls, so a lease of one task at a
time still alternates between scopes; losing them (a restart) only restarts the rotation. A
scope is charged only for what it is given: a carrier of small objects that would pass the
lease's limit ends the batch and keeps its scope's turn for the next lease.
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
    (up to a lease's limit, a thousand, per queue) at a tuple's cost. ``objects`` is what it
    counts against a lease's limit: more than one for a carrier of small objects."""

    id: int
    priority: int
    objects: int = 1


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
        """Task ids in dispatch order, their objects adding up to no more than ``limit``
        (the first is picked whatever its objects: a carrier larger than a lease is leased
        alone rather than never). ``queues`` holds each queue's head (priority high first,
        then oldest); ``room`` is consumed as tasks are picked."""
        state = [_Queue(key, channel_of.get(key), items) for key, items in queues.items()]
        picked: list[int] = []
        left = limit  # objects
        while left > 0:
            ready = [q for q in state if q.head is not None and _has_room(q, room)]
            if not ready:
                break
            if len(ready) == 1:  # one queue left to serve: the rest of it in one step
                picked += self._serve_alone(ready[0], room, left, first=not picked)
                break
            scopes = {q.key[0] for q in ready}
            scope = self._next_scope(scopes, weights)
            queue = self._best_queue([q for q in ready if q.key[0] == scope])
            head = queue.head
            assert head is not None
            if picked and head.objects > left:
                break  # the scope keeps its turn: it is charged only when served
            self._charge(scope, scopes, weights)
            picked.append(head.id)
            left -= head.objects
            queue.next += 1
            self._last_served[queue.key] = next(self._served)
            if queue.channel is not None:
                room[queue.channel] -= 1
        return picked

    def _serve_alone(
        self, queue: _Queue, room: dict[Pair, int], objects: int, *, first: bool
    ) -> list[int]:
        """The head of ``queue`` up to ``objects`` (the first whatever its size when ``first``)
        and its channel's room."""
        slots = room[queue.channel] if queue.channel is not None else len(queue.items)
        taken: list[Queued] = []
        for item in queue.items[queue.next : queue.next + slots]:
            if item.objects > objects and (taken or not first):
                break
            taken.append(item)
            objects -= item.objects
            if objects <= 0:
                break
        queue.next += len(taken)
        if queue.channel is not None:
            room[queue.channel] -= len(taken)
        # A scope served alone earns its weight and pays it back: its credit does not move.
        self._last_served[queue.key] = next(self._served)
        return [item.id for item in taken]

    def _next_scope(self, scopes: set[str], weights: Mapping[str, int]) -> str:
        """Smooth weighted round-robin: every ready scope earns its weight, the richest is
        served and pays the total (in ``_charge``, once it is served)."""
        return max(sorted(scopes), key=lambda s: self._credit.get(s, 0.0) + _weight(weights, s))

    def _charge(self, chosen: str, scopes: set[str], weights: Mapping[str, int]) -> None:
        for scope in scopes:
            self._credit[scope] = self._credit.get(scope, 0.0) + _weight(weights, scope)
        self._credit[chosen] -= sum(_weight(weights, scope) for scope in scopes)

    def _best_queue(self, queues: list[_Queue]) -> _Queue:
        """Highest head priority; among equals, the queue served longest ago, then the oldest."""

        def rank(q: _Queue) -> tuple[int, int, int]:
            head = q.head
            assert head is not None
            return (-head.priority, self._last_served.get(q.key, -1), head.id)

        return min(queues, key=rank)


def _weight(weights: Mapping[str, int], scope: str) -> int:
    return max(1, weights.get(scope, 1))


def _has_room(queue: _Queue, room: Mapping[Pair, int]) -> bool:
    return queue.channel is None or room.get(queue.channel, 0) > 0
