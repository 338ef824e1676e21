"""The link optimizer's loop: for each optimized channel, what it moved over a window, and its
limit moved by the control law (``domain/optimizer.py``). One server of a cluster runs it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from ferry.domain.channels import Channel, ChannelMap, ChannelState
from ferry.domain.dispatch import Pair
from ferry.domain.events import ChannelOptimized
from ferry.domain.optimizer import (
    Decision,
    OpenWindow,
    Search,
    Window,
    decide,
    settle_s,
    start,
    window_for,
)
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import LinkTally, Store

log = logging.getLogger("ferry.scheduler")

# Sums of (succeeded, failed, bytes), of one channel and per channel.
Tally = tuple[int, int, int]
Sums = dict[Pair, Tally]
NOTHING: Tally = (0, 0, 0)
TICK_S = 0.5  # how often it looks whether a channel's window has ended


class OptimizerLoop(Loop):
    """For each ACTIVE channel that optimizes, a window opens (with the sums its links have
    moved so far; ``window_s`` long, or twice that once the search is fine: ``window_for``),
    and when it ends: what the links moved in it and the objects active now, judged by
    ``decide``; the search, decision and next window kept in the channel's row, and a
    ``ChannelOptimized`` event when the limit moved. After a move the next window opens once
    the objects started under the old limit have had time to end (``settle_s``). The window
    lives in the row, so that whichever server of a cluster takes the next turn goes on with
    it; one left open too long (no server ran the loop meanwhile) is opened again."""

    name = "optimizer"
    singleton = True
    interval = TICK_S

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        *,
        window_s: float = 5.0,
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.window_s = window_s

    async def run_once(self) -> None:
        channels = await self.store.list_channels()
        optimized = [c for c in channels if c.optimize and c.state is ChannelState.ACTIVE]
        if not optimized:
            return
        now = self.clock().timestamp()
        sums = sums_by_channel(ChannelMap(channels), await self.store.link_tallies())
        active: Mapping[Pair, int] | None = None
        for channel in optimized:
            opened = await self._opened(channel, now, sums.get(channel.key, NOTHING))
            if opened is None or now - opened.at < self._length(channel):
                continue
            if active is None:
                active = await self.store.active_by_channel()
            window = window_of(channel.key, sums, opened, now, active)
            await self._judge(channel, window, now, sums.get(channel.key, NOTHING))

    def _length(self, channel: Channel) -> float:
        return window_for(channel.search or start(channel.min_active or 1), self.window_s)

    async def _opened(self, channel: Channel, now: float, sums: Tally) -> OpenWindow | None:
        """The channel's open window; None while none is (one is opened now if due)."""
        window = channel.window
        if window is not None and window.sums is None and now < window.at:
            return None  # settling after a move
        stale = window is not None and now - window.at > 3 * self._length(channel)
        if window is None or window.sums is None or stale or now < window.at:
            await self._keep(channel, channel.search, channel.decision, OpenWindow(now, sums))
            return None
        return window

    async def _keep(
        self,
        channel: Channel,
        search: Search | None,
        decision: Decision | None,
        window: OpenWindow,
    ) -> bool:
        search = search or start(channel.min_active or 1)
        return await self.store.record_channel_decision(channel.key, search, decision, window)

    async def _judge(self, channel: Channel, window: Window, now: float, sums: Tally) -> None:
        """Decide on ``window``, keep the decision and the next window, tell of a move."""
        floor, ceiling = channel.min_active or 1, channel.max_active or 1
        search, decision = decide(channel.search or start(floor), window, floor, ceiling)
        wait = settle_s(decision, self.window_s)
        following = OpenWindow(now + wait) if wait else OpenWindow(now, sums)
        if not await self._keep(channel, search, decision, following):
            return  # set anew or removed meanwhile: its new setting starts afresh
        if decision.limit == decision.previous:
            log.debug("channel %s: limit kept: %s", channel.name, decision.reason)
            return
        log.info(
            "channel %s: limit %d → %d: %s",
            channel.name, decision.previous, decision.limit, decision.reason,
        )  # fmt: skip
        self.wakeups.events.publish(optimized_event(channel, decision))
        if decision.limit > decision.previous:
            self.wakeups.work_queued()


def sums_by_channel(channels: ChannelMap, tallies: Mapping[Pair, LinkTally]) -> Sums:
    """The links' sums added up by the channel that governs each."""
    sums: dict[Pair, Counter[str]] = {}
    for (source, destination), tally in tallies.items():
        channel = channels.resolve(source, destination)
        if channel is not None:
            sums.setdefault(channel.key, Counter()).update(tally._asdict())
    return {key: (c["succeeded"], c["failed"], c["bytes"]) for key, c in sums.items()}


def window_of(
    key: Pair, sums: Sums, opened: OpenWindow, now: float, active: Mapping[Pair, int]
) -> Window:
    """What channel ``key`` moved from the window's opening to ``now``."""
    after, earlier = sums.get(key, NOTHING), opened.sums or NOTHING
    succeeded, failed, moved = (max(0, a - b) for a, b in zip(after, earlier, strict=True))
    return Window(now - opened.at, succeeded, failed, moved, active.get(key, 0))


def optimized_event(channel: Channel, decision: Decision) -> ChannelOptimized:
    return ChannelOptimized(
        source_site=channel.source_site,
        destination_site=channel.destination_site,
        limit=decision.limit,
        previous=decision.previous,
        reason=decision.reason,
        bytes_per_s=decision.bytes_per_s,
        objects_per_s=decision.objects_per_s,
        success_rate=decision.success_rate,
    )
