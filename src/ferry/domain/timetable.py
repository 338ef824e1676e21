"""A bandwidth timetable: the rate a channel may use at each time of the week, as rclone's
``--bwlimit "08:00,512k 19:00,off"`` with days and seconds.

Written ``[DAYS] HH:MM[:SS],RATE`` entries separated by ``;``, e.g.
``Mon-Fri 08:00,50M; 19:00,off``. ``DAYS`` is a day (``Mon``), a range (``Mon-Fri``, which may
wrap: ``Fri-Mon``) or a list of them (``Sat,Sun``); an entry without days holds every day.
``RATE`` is bytes per second with K, M, G as powers of 1024, or ``off`` (no limit). A rate
alone (``10M``) holds all week. At any time the rate is the last entry's to start before it,
going back across the week: above, Saturday is unlimited (Friday's 19:00 ``off``).
Times are in the channel's time zone; a clock change makes an hour run short or long, never
skips an entry (the time of day read from the local clock decides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ferry.domain.options import parse_rate
from ferry.errors import InvalidRequest

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEK_S = 7 * 24 * 3600
_ENTRY = re.compile(
    r"^(?:(?P<days>[A-Za-z][A-Za-z,\-]*)\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*,\s*(?P<rate>\S+)$"
)
MAX_ENTRIES = 200


@dataclass(frozen=True, slots=True)
class Entry:
    """From ``at`` seconds into the week (Monday 00:00 is 0), the rate is ``rate`` (None: no
    limit), until the next entry."""

    at: int
    rate: int | None


@dataclass(frozen=True, slots=True)
class Timetable:
    text: str  # as written, which is how it is stored and shown
    entries: tuple[Entry, ...]  # by ``at``; at least one

    @classmethod
    def parse(cls, text: str) -> Timetable:
        """The timetable ``text`` says; :class:`InvalidRequest` naming the entry at fault."""
        parts = [part.strip() for part in text.split(";") if part.strip()]
        if not parts:
            raise InvalidRequest("a bandwidth timetable needs at least one entry")
        if len(parts) > MAX_ENTRIES:
            raise InvalidRequest(f"a bandwidth timetable has at most {MAX_ENTRIES} entries")
        if len(parts) == 1 and ":" not in parts[0]:
            return cls(text.strip(), (Entry(0, _rate(parts[0], parts[0])),))
        by_time: dict[int, Entry] = {}
        for part in parts:
            for entry in _entries(part):
                if entry.at in by_time:
                    raise InvalidRequest(f"{part!r}: another entry starts at the same time")
                by_time[entry.at] = entry
        return cls("; ".join(parts), tuple(sorted(by_time.values(), key=lambda e: e.at)))

    def rate_at(self, when: datetime) -> int | None:
        """The rate in force at ``when`` (aware; read in the time zone it carries)."""
        return self._entry_at(_week_seconds(when)).rate

    def next_change(self, when: datetime) -> datetime | None:
        """When the rate next becomes different from the one at ``when``; None if it never
        does. The answer is at most a week ahead, in ``when``'s time zone."""
        now = _week_seconds(when)
        rate = self._entry_at(now).rate
        for ahead in _ahead_of(self.entries, now):
            entry, offset = ahead
            if entry.rate != rate:
                wall = when.replace(tzinfo=None) + timedelta(seconds=offset)
                return wall.replace(tzinfo=when.tzinfo)
        return None

    def seconds_to_change(self, when: datetime) -> float | None:
        """Seconds of real time from ``when`` to :meth:`next_change` (across a clock change
        too); None if the rate never changes."""
        change = self.next_change(when)
        if change is None:
            return None
        return (change.astimezone(UTC) - when.astimezone(UTC)).total_seconds()

    def _entry_at(self, second: int) -> Entry:
        current = self.entries[-1]  # the week's last entry holds over into its start
        for entry in self.entries:
            if entry.at > second:
                break
            current = entry
        return current


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name``; :class:`InvalidRequest` if there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"{name!r} is not a time zone (an IANA name: Europe/Rome)") from exc


def _ahead_of(entries: tuple[Entry, ...], now: int) -> list[tuple[Entry, int]]:
    """Each entry with the seconds from ``now`` to its next start, soonest first."""
    return sorted(((e, (e.at - now) % WEEK_S or WEEK_S) for e in entries), key=lambda pair: pair[1])


def _entries(part: str) -> list[Entry]:
    match = _ENTRY.match(part)
    if match is None:
        raise InvalidRequest(
            f"{part!r} is not a timetable entry: [DAYS] HH:MM[:SS],RATE (Mon-Fri 08:00,50M)"
        )
    hours, minutes, seconds = (int(match[k] or 0) for k in ("h", "m", "s"))
    if hours > 23 or minutes > 59 or seconds > 59:
        raise InvalidRequest(f"{part!r}: no such time of day")
    of_day = hours * 3600 + minutes * 60 + seconds
    rate = _rate(match["rate"], part)
    return [Entry(day * 86400 + of_day, rate) for day in _days(match["days"], part)]


def _days(text: str | None, part: str) -> list[int]:
    if text is None:
        return list(range(7))
    days: set[int] = set()
    for item in text.split(","):
        first, _, last = item.partition("-")
        start, end = _day(first, part), _day(last or first, part)
        days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
    return sorted(days)


def _day(name: str, part: str) -> int:
    for number, day in enumerate(DAYS):
        if name.capitalize() == day:
            return number
    raise InvalidRequest(f"{part!r}: {name!r} is not a day (Mon, Tue, … Sun)")


def _rate(text: str, part: str) -> int | None:
    if text.lower() == "off":
        return None
    try:
        rate = parse_rate(text)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{part!r}: {exc}") from exc
    if rate < 1:
        raise InvalidRequest(f"{part!r}: a rate is at least 1 byte/s, or off")
    return rate


def _week_seconds(when: datetime) -> int:
    clock: time = when.time()
    return when.weekday() * 86400 + clock.hour * 3600 + clock.minute * 60 + clock.second
