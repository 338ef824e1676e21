"""When a transfer runs (DESIGN §3): one pure function of the schedule serves the due loop, the
API and ``ferry schedule preview``.

- ``direct``: now. ``at``: once, at an instant (a past one means now).
- ``every``: occurrence k is ``start + k·interval·unit``. Minutes and hours are elapsed time;
  days, weeks, months and years follow the wall clock of ``timezone``, months and years clamped
  to the end of the month and always counted from ``start`` (Jan 31, Feb 28, Mar 31, …).
- ``cron``: a 5-field expression read on the wall clock of ``timezone`` (Debian cron's rules).
- A wall-clock time that does not exist (spring forward) happens at the first instant after the
  gap; an ambiguous one (fall back) happens once, at the first of its two instants.
- ``until`` and ``count`` end a series. Every instant is timezone-aware; results are in UTC.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from dateutil.relativedelta import relativedelta

from ferry.errors import InvalidSchedule


class ScheduleKind(StrEnum):
    DIRECT = "direct"
    AT = "at"
    EVERY = "every"
    CRON = "cron"


class Unit(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


ELAPSED = {Unit.MINUTE: timedelta(minutes=1), Unit.HOUR: timedelta(hours=1)}
CALENDAR = {
    Unit.DAY: relativedelta(days=1),
    Unit.WEEK: relativedelta(weeks=1),
    Unit.MONTH: relativedelta(months=1),
    Unit.YEAR: relativedelta(years=1),
}
# A rough length of each unit, only to jump near an instant before stepping exactly.
APPROXIMATE = {
    **ELAPSED,
    Unit.DAY: timedelta(days=1),
    Unit.WEEK: timedelta(weeks=1),
    Unit.MONTH: timedelta(days=30.436875),
    Unit.YEAR: timedelta(days=365.2425),
}


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: ScheduleKind = ScheduleKind.DIRECT
    at: datetime | None = None
    unit: Unit | None = None
    interval: int = 1
    start: datetime | None = None
    until: datetime | None = None
    count: int | None = None
    expr: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _member(ScheduleKind, self.kind, "kind"))
        if self.unit is not None:
            object.__setattr__(self, "unit", _member(Unit, self.unit, "unit"))
        _validate(self)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def periodic(self) -> bool:
        return self.kind in (ScheduleKind.EVERY, ScheduleKind.CRON)

    def anchored(self, now: datetime) -> Schedule:
        """The schedule with its defaults made explicit: ``start`` (every, cron) is ``now``."""
        if self.periodic and self.start is None:
            return replace(self, start=now)
        return self

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind.value}
        for name in ("at", "start", "until"):
            if (value := getattr(self, name)) is not None:
                body[name] = value.astimezone(UTC).isoformat()
        if self.start is not None:
            body["start"] = _wall_start(self.start, self.zone)[1].isoformat()  # its first instant
        if self.kind is ScheduleKind.EVERY:
            body |= {"unit": self.unit.value if self.unit else None, "interval": self.interval}
        if self.count is not None:
            body["count"] = self.count
        if self.expr is not None:
            body["expr"] = self.expr
        if self.kind is not ScheduleKind.DIRECT:
            body["timezone"] = self.timezone
        if self.start is not None and _in_zone(self.start, self.zone):
            # The wall time the series repeats, which the instant alone loses when it names a
            # time a DST change skipped or repeated.
            body["start_wall"] = self.start.replace(tzinfo=None).isoformat()
            body["start_fold"] = self.start.fold
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        instants = {
            k: datetime.fromisoformat(data[k]) for k in ("at", "start", "until") if data.get(k)
        }
        if data.get("start_wall"):
            zone = ZoneInfo(data.get("timezone", "UTC"))
            wall = datetime.fromisoformat(data["start_wall"])
            instants["start"] = wall.replace(tzinfo=zone, fold=int(data.get("start_fold", 0)))
        return cls(
            kind=data.get("kind", "direct"),
            unit=data.get("unit") or None,
            interval=int(data.get("interval", 1)),
            count=data.get("count"),
            expr=data.get("expr"),
            timezone=data.get("timezone", "UTC"),
            **instants,
        )


E = TypeVar("E", bound=StrEnum)


def _member(enum: type[E], value: object, name: str) -> E:
    try:
        return enum(str(value))
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidSchedule(f"unknown {name} {value!r} (one of {allowed})") from exc


def _validate(schedule: Schedule) -> None:
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {schedule.timezone!r}") from exc
    for name in ("at", "start", "until"):
        value = getattr(schedule, name)
        if value is not None and value.tzinfo is None:
            raise InvalidSchedule(f"{name} must carry its offset or time zone")
    if schedule.kind is ScheduleKind.AT and schedule.at is None:
        raise InvalidSchedule("an 'at' schedule needs 'at'")
    if schedule.kind is ScheduleKind.EVERY and schedule.unit is None:
        raise InvalidSchedule(
            "an 'every' schedule needs a unit (minute, hour, day, week, month, year)"
        )
    if schedule.interval < 1:
        raise InvalidSchedule(f"interval must be at least 1, not {schedule.interval}")
    if schedule.count is not None and schedule.count < 1:
        raise InvalidSchedule(f"count must be at least 1, not {schedule.count}")
    if (
        schedule.until is not None
        and schedule.start is not None
        and schedule.until < schedule.start
    ):
        raise InvalidSchedule("until is before start")
    if schedule.kind is ScheduleKind.CRON:
        _check_cron(schedule.expr)


def _check_cron(expr: str | None) -> None:
    if not expr or len(expr.split()) != 5:
        raise InvalidSchedule(f"a cron expression has 5 fields, got {expr!r}")
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise InvalidSchedule(f"bad cron expression {expr!r}: {exc}") from exc


# --- occurrences ---------------------------------------------------------------------------------


def occurrences(schedule: Schedule, after: datetime | None = None) -> Iterator[datetime]:
    """The schedule's instants in increasing order (UTC), strictly after ``after`` if given,
    within ``until`` and ``count``. ``direct`` has none: it runs when submitted. A periodic
    schedule must be anchored (``start`` set)."""
    if schedule.kind is ScheduleKind.DIRECT:
        return iter(())
    if schedule.kind is ScheduleKind.AT:
        assert schedule.at is not None
        at = schedule.at.astimezone(UTC)
        return iter([at] if after is None or at > after else [])
    if schedule.start is None:
        raise InvalidSchedule("a periodic schedule needs a start")
    series = (
        _every(schedule, after) if schedule.kind is ScheduleKind.EVERY else _cron(schedule, after)
    )
    return _bounded(schedule, series, after)


def next_occurrence(schedule: Schedule, after: datetime) -> datetime | None:
    return next(occurrences(schedule, after), None)


COUNT_LIMIT = 100_000  # counting occurrences one by one stops here (a record, not a bill)


def count_between(
    schedule: Schedule, first: datetime, last: datetime, limit: int = COUNT_LIMIT
) -> int:
    """How many occurrences fall in ``[first, last]``, at most ``limit``: by arithmetic for
    minutes and hours, one by one for calendar units and cron, so a long outage costs no more
    than a bounded loop."""
    if last < first:
        return 0
    if schedule.kind is ScheduleKind.EVERY and schedule.unit in ELAPSED:
        return min(limit, _count_elapsed(schedule, first, last))
    items = occurrences(schedule, first - timedelta(microseconds=1))
    return sum(1 for _ in itertools.islice(itertools.takewhile(lambda t: t <= last, items), limit))


def _count_elapsed(schedule: Schedule, first: datetime, last: datetime) -> int:
    assert schedule.start is not None
    assert schedule.unit is not None
    start = schedule.start.astimezone(UTC)
    step = ELAPSED[schedule.unit] * schedule.interval
    if schedule.until is not None:
        last = min(last, schedule.until)
    low = max(0, -((start - first) // step))  # first index at or after ``first``
    high = (last - start) // step  # last index at or before ``last``
    if schedule.count is not None:
        high = min(high, schedule.count - 1)
    return max(0, high - low + 1)


def _bounded(
    schedule: Schedule, series: Iterator[tuple[int, datetime]], after: datetime | None
) -> Iterator[datetime]:
    for index, instant in series:
        if schedule.count is not None and index >= schedule.count:
            return
        if schedule.until is not None and instant > schedule.until:
            return
        if after is None or instant > after:
            yield instant


def _every(schedule: Schedule, after: datetime | None) -> Iterator[tuple[int, datetime]]:
    """(k, occurrence k) from the first k whose occurrence may follow ``after``."""
    assert schedule.start is not None
    assert schedule.unit is not None
    start = schedule.start.astimezone(UTC)
    k = _first_index(schedule, start, after)
    if schedule.unit in ELAPSED:
        step = ELAPSED[schedule.unit] * schedule.interval
        return ((i, start + i * step) for i in itertools.count(k))
    zone = schedule.zone
    wall, first = _wall_start(schedule.start, zone)
    step_wall = CALENDAR[schedule.unit] * schedule.interval
    return (
        (i, first if i == 0 else to_instant(wall + step_wall * i, zone)) for i in itertools.count(k)
    )


def _in_zone(given: datetime, zone: ZoneInfo) -> bool:
    return given.tzinfo is not None and getattr(given.tzinfo, "key", None) == zone.key


def _wall_start(given: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The wall time a calendar series repeats, and its first instant. A start written in the
    schedule's own zone keeps its wall time even in a DST gap (it then happens at the first
    instant after the gap) and its reading of an ambiguous hour (the wall clock alone cannot
    tell which); any other start is converted to the zone."""
    if _in_zone(given, zone):
        wall = given.replace(tzinfo=None)
        first = given.astimezone(UTC) if _exists(given, zone) else to_instant(wall, zone)
        return wall, first
    return given.astimezone(zone).replace(tzinfo=None), given.astimezone(UTC)


def _first_index(schedule: Schedule, start: datetime, after: datetime | None) -> int:
    """An index at or before the first occurrence after ``after``: a jump by the unit's rough
    length, backed off by two steps so that calendar irregularities never skip one."""
    if after is None or after <= start:
        return 0
    assert schedule.unit is not None
    rough = APPROXIMATE[schedule.unit] * schedule.interval
    return max(0, int((after - start) / rough) - 2)


def _cron(schedule: Schedule, after: datetime | None) -> Iterator[tuple[int, datetime]]:
    assert schedule.start is not None
    assert schedule.expr is not None
    zone = schedule.zone
    # cronsim yields instants strictly after the one it is given; occurrence 0 may be ``start``.
    begin = schedule.start.astimezone(zone) - timedelta(microseconds=1)
    if schedule.count is None and after is not None and after > begin:
        begin = after.astimezone(zone)  # only the index needs the series from its start
    instants = (t.astimezone(UTC) for t in CronSim(schedule.expr, begin))
    return enumerate(instants)


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of a naive wall-clock time in ``zone``: an ambiguous time is its first
    instant; a time in a gap is the first instant after the gap."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset() or _exists(first, zone):
        return first.astimezone(UTC)
    return _end_of_gap(first, second)


def _exists(aware: datetime, zone: ZoneInfo) -> bool:
    round_trip = aware.astimezone(UTC).astimezone(zone)
    return round_trip.replace(tzinfo=None) == aware.replace(tzinfo=None)


def _end_of_gap(first: datetime, second: datetime) -> datetime:
    """The instant the clocks jumped, found (to the second) between the two readings of a time
    that does not exist."""
    zone = first.tzinfo
    low, high = sorted((int(first.timestamp()), int(second.timestamp())))
    before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


# --- times as people write them -----------------------------------------------------------------

_RELATIVE = re.compile(r"^\+(\d+)([smhd])$")
_RELATIVE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def relative_time(text: str, now: datetime) -> datetime | None:
    """``+30s``, ``+10m``, ``+2h``, ``+1d`` from ``now``; ``None`` if ``text`` is not one."""
    match = _RELATIVE.match(text.strip())
    if match is None:
        return None
    return now + timedelta(**{_RELATIVE_UNITS[match.group(2)]: int(match.group(1))})


# --- what the scheduler asks ---------------------------------------------------------------------


def first_due(schedule: Schedule, now: datetime) -> datetime | None:
    """When a newly submitted transfer first runs: now for ``direct``, a past ``at`` or a past
    ``start`` (never a storm of catch-up runs); otherwise its first occurrence. ``None`` when a
    periodic series has nothing left (``until`` passed, ``count`` spent)."""
    if schedule.kind is ScheduleKind.DIRECT:
        return now
    first = next(occurrences(schedule), None)
    if first is None:
        return None
    if first > now:
        return first
    if schedule.periodic and next_occurrence(schedule, now - timedelta(microseconds=1)) is None:
        return None
    return now


def upcoming(schedule: Schedule, now: datetime) -> Iterator[datetime]:
    """The instants a transfer submitted ``now`` with this schedule would run at, in order:
    what ``ferry schedule preview`` prints and the scheduler does."""
    first = first_due(schedule, now)
    if first is None:
        return
    yield first
    if schedule.periodic:
        yield from occurrences(schedule, after=first)


def occurrences_due(schedule: Schedule, due_at: datetime, now: datetime) -> int:
    """How many occurrences a run started at ``now`` for ``due_at`` stands for: all those missed
    while the server was down coalesce into this one run (at least 1)."""
    if not schedule.periodic:
        return 1
    return max(1, count_between(schedule, due_at, now))


def after_run(
    schedule: Schedule, started_at: datetime, finished_at: datetime
) -> tuple[int, datetime | None]:
    """Occurrences that came due while a run was ONGOING (skipped: runs never overlap), and the
    next occurrence, ``None`` once the series has ended."""
    if not schedule.periodic:
        return 0, None
    skipped = count_between(schedule, started_at + timedelta(microseconds=1), finished_at)
    return skipped, next_occurrence(schedule, finished_at)
