"""The agent's leased, unstarted tasks, handed to copy slots in the scheduler's order.

An agent leases work ahead (a few hundred small objects) so that no slot waits on a round trip.
Taken first in first out, what it leased before a new scope or an urgent transfer arrived
would all run first: hundreds of tasks of one scope ahead of ten of another. So the local queue
applies the server's rules to what it holds: strict priority inside a scope, smooth weighted
round-robin across scopes, and the lease order otherwise.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Generic, TypeVar

from ferry.domain.dispatch import FairDispatcher, Queued, QueueKey

Item = TypeVar("Item")
_Entry = tuple[int, int, Item]  # (-priority, arrival, item): heapq pops the first


class FairQueue(Generic[Item]):
    def __init__(self) -> None:
        self._scopes: dict[str, list[_Entry[Item]]] = {}
        self._weights: dict[str, int] = {}
        self._dispatcher = FairDispatcher()
        self._arrival = itertools.count()
        self._tokens: asyncio.Queue[None] = asyncio.Queue()  # one per item held

    def put_nowait(self, item: Item, *, scope: str, priority: int, weight: int = 1) -> None:
        heapq.heappush(self._scopes.setdefault(scope, []), (-priority, next(self._arrival), item))
        self._weights[scope] = weight
        self._tokens.put_nowait(None)

    async def get(self) -> Item:
        await self._tokens.get()
        return self._pop()

    def get_nowait(self) -> Item:
        self._tokens.get_nowait()  # raises asyncio.QueueEmpty
        return self._pop()

    def empty(self) -> bool:
        return self._tokens.empty()

    def qsize(self) -> int:
        return self._tokens.qsize()

    def _pop(self) -> Item:
        if len(self._scopes) == 1:  # one scope held: its credit would not move (nothing to pick)
            ((scope, entries),) = self._scopes.items()
            return self._pop_from(scope, entries)
        scopes = [scope for scope, entries in self._scopes.items() if entries]
        heads: dict[QueueKey, list[Queued]] = {
            (scope, "", ""): [Queued(n, -self._scopes[scope][0][0])]
            for n, scope in enumerate(scopes)
        }
        (picked,) = self._dispatcher.pick(heads, {}, {}, self._weights, 1)
        return self._pop_from(scopes[picked], self._scopes[scopes[picked]])

    def _pop_from(self, scope: str, entries: list[_Entry[Item]]) -> Item:
        item = heapq.heappop(entries)[2]
        if not entries:
            del self._scopes[scope]
        return item
