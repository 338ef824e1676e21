"""Named timers (DaemonCore's Register_Timer, Reset_Timer, Cancel_Timer) on asyncio.

A timer is one-shot or periodic and known by its name; ``reset`` starts its countdown again,
``cancel`` removes it. Each firing runs its handler as a task of its own, so a long handler
never holds the loop or the other timers up; a periodic timer whose previous run is still going
lets that beat pass. A handler that raises is logged and its timer keeps its schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("ferry.daemon")

Handler = Callable[[], Awaitable[None]]


@dataclass
class _Timer:
    name: str
    handler: Handler
    delay: float
    interval: float | None  # None: one-shot
    countdown: asyncio.Task[None] | None = None
    running: asyncio.Task[None] | None = field(default=None, repr=False)
    fired: int = 0


class Timers:
    def __init__(self) -> None:
        self._timers: dict[str, _Timer] = {}

    def once(self, name: str, delay: float, handler: Handler) -> None:
        """Run ``handler`` once, ``delay`` seconds from now (replacing a timer of that name)."""
        self._start(_Timer(name, handler, delay, None))

    def every(
        self, name: str, interval: float, handler: Handler, *, first: float | None = None
    ) -> None:
        """Run ``handler`` every ``interval`` seconds, the first time after ``first``."""
        if interval <= 0:
            raise ValueError(f"timer {name}: the interval must be positive")
        self._start(_Timer(name, handler, interval if first is None else first, interval))

    def reset(self, name: str, delay: float | None = None) -> None:
        """Start the countdown again (after ``delay``, or the timer's own)."""
        timer = self._timers[name]
        if timer.countdown is not None:
            timer.countdown.cancel()
        if delay is not None:
            timer.delay = delay
        timer.countdown = asyncio.create_task(self._count(timer), name=f"timer:{name}")

    def cancel(self, name: str) -> bool:
        """Remove the timer; a handler already running finishes. False if there was none."""
        timer = self._timers.pop(name, None)
        if timer is None:
            return False
        if timer.countdown is not None:
            timer.countdown.cancel()
        return True

    def fired(self, name: str) -> int:
        return self._timers[name].fired

    @property
    def names(self) -> list[str]:
        return sorted(self._timers)

    async def close(self) -> None:
        """Cancel every timer and every handler still running."""
        timers = list(self._timers.values())
        self._timers.clear()
        tasks = [t for timer in timers for t in (timer.countdown, timer.running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _start(self, timer: _Timer) -> None:
        self.cancel(timer.name)
        self._timers[timer.name] = timer
        timer.countdown = asyncio.create_task(self._count(timer), name=f"timer:{timer.name}")

    async def _count(self, timer: _Timer) -> None:
        delay = timer.delay
        while True:
            await asyncio.sleep(delay)
            self._fire(timer)
            if timer.interval is None:
                self._timers.pop(timer.name, None)
                return
            delay = timer.interval

    def _fire(self, timer: _Timer) -> None:
        if timer.running is not None and not timer.running.done():
            log.debug("timer %s: its previous run is still going; this beat passes", timer.name)
            return
        timer.fired += 1
        timer.running = asyncio.create_task(self._run(timer), name=f"timer-run:{timer.name}")

    async def _run(self, timer: _Timer) -> None:
        try:
            await timer.handler()
        except Exception:
            log.exception("timer %s: its handler failed; the timer keeps its schedule", timer.name)
