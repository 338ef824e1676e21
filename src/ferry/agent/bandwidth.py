"""An agent's own bandwidth (``ferry agent --bandwidth-timetable``): one rate for all the
copies of the agent together, as rclone's ``--bwlimit`` holds for one rclone process, read at
each moment from a timetable (``domain.timetable``) in the agent's time zone.

The rate in force is shared evenly by the copies moving bytes at that moment; each copy reads
its share at every block, so a change of the timetable's rate, a copy starting or one ending
is felt within a block (a tenth of a second of transfer), with no heartbeat and no restart.
A channel's share given by the server, where there is one, still holds: a copy takes the lesser
of the two. ``set`` replaces the timetable while copies run (``ferry admin reconfig``, SIGHUP).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from ferry.domain.timetable import Timetable, zone


class AgentBandwidth:
    def __init__(
        self,
        timetable: Timetable,
        timezone: str = "UTC",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.copying = 0  # copies moving bytes now
        self.set(timetable, timezone)

    def set(self, timetable: Timetable, timezone: str) -> None:
        """Hold ``timetable``, read in ``timezone``, from now on."""
        self.timetable, self.timezone, self._zone = timetable, timezone, zone(timezone)

    def rate_now(self) -> int | None:
        """The agent's rate now; None: no limit."""
        return self.timetable.rate_at(self._clock().astimezone(self._zone))

    def share(self) -> int | None:
        """What one copy may move now: the rate split by the copies moving bytes."""
        rate = self.rate_now()
        if rate is None:
            return None
        return max(1, rate // max(1, self.copying))

    def limit(self, channel_share: int | None) -> int | None:
        """The lesser of a copy's channel share and its share of the agent's rate."""
        own = self.share()
        if own is None or channel_share is None:
            return own if channel_share is None else channel_share
        return min(own, channel_share)

    @contextlib.contextmanager
    def copy(self) -> Iterator[None]:
        """Count a copy as moving bytes while inside."""
        with self._lock:
            self.copying += 1
        try:
            yield
        finally:
            with self._lock:
                self.copying -= 1


def agent_bandwidth(timetable: str | None, timezone: str) -> AgentBandwidth | None:
    """The agent's bandwidth its settings give, or None when they give no timetable."""
    if timetable is None:
        return None
    return AgentBandwidth(Timetable.parse(timetable), timezone)
