"""A token bucket: a copy that may move ``rate`` bytes per second waits when it runs ahead; with
no rate (a timetable's ``off``), it never waits, until a rate is set."""

from __future__ import annotations

import time
from collections.abc import Callable

UNLIMITED_BLOCK = 4 * 1024 * 1024  # a block's size at the highest rates, and with none


class Throttle:
    def __init__(
        self,
        rate: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._moved = 0

    @property
    def block_size(self) -> int:
        """Blocks of about a tenth of a second of transfer, so waits stay short and smooth."""
        if self.rate is None:
            return UNLIMITED_BLOCK
        return max(16 * 1024, min(UNLIMITED_BLOCK, self.rate // 10))

    def set_rate(self, rate: int | None) -> None:
        """A new rate, from now on (what moved before is not owed or credited)."""
        if rate != self.rate:
            self.rate, self._started, self._moved = rate, self._clock(), 0

    def consume(self, nbytes: int) -> None:
        """Account for ``nbytes`` moved; sleep until the average rate is back under ``rate``."""
        if self.rate is None:
            return
        self._moved += nbytes
        ahead = self._moved / self.rate - (self._clock() - self._started)
        if ahead > 0:
            self._sleep(ahead)
