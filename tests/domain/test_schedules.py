"""Schedules (DESIGN §3, issue 3 acceptance 1 and 2): properties of every series over units,
intervals, starts and time zones with DST, and one named test per rule."""

from __future__ import annotations

import calendar
import functools
import itertools
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ferry.domain.schedules import (
    Schedule,
    ScheduleKind,
    Unit,
    after_run,
    count_between,
    first_due,
    next_occurrence,
    occurrences,
    occurrences_due,
    to_instant,
    upcoming,
)
from ferry.errors import InvalidRequest, InvalidSchedule

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")

DST_ZONES = [
    "Europe/Rome",
    "America/New_York",
    "Australia/Sydney",
    "Europe/London",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Pacific/Apia",  # skipped the whole of 2011-12-30
]
FIXED_ZONES = ["UTC", "Etc/GMT+3", "Etc/GMT-5", "Asia/Kolkata"]
ELAPSED_UNITS = {Unit.MINUTE: timedelta(minutes=1), Unit.HOUR: timedelta(hours=1)}
CALENDAR_UNITS = {
    Unit.DAY: relativedelta(days=1),
    Unit.WEEK: relativedelta(weeks=1),
    Unit.MONTH: relativedelta(months=1),
    Unit.YEAR: relativedelta(years=1),
}
ROUGH = {
    **ELAPSED_UNITS,
    Unit.DAY: timedelta(days=1),
    Unit.WEEK: timedelta(weeks=1),
    Unit.MONTH: timedelta(days=31),
    Unit.YEAR: timedelta(days=366),
}
TAKE = 20
PROPERTY = settings(max_examples=150, deadline=None)


def take(schedule: Schedule, n: int = TAKE, after: datetime | None = None) -> list[datetime]:
    return list(itertools.islice(occurrences(schedule, after), n))


def local(instants: list[datetime], zone: ZoneInfo) -> list[str]:
    return [t.astimezone(zone).isoformat() for t in instants]


def every(unit: Unit, start: datetime, tz: str = "UTC", **fields: object) -> Schedule:
    return Schedule(kind=ScheduleKind.EVERY, unit=unit, start=start, timezone=tz, **fields)


def cron(expr: str, start: datetime, tz: str = "UTC", **fields: object) -> Schedule:
    return Schedule(kind=ScheduleKind.CRON, expr=expr, start=start, timezone=tz, **fields)


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


# --- strategies ----------------------------------------------------------------------------------

# Wall-clock times, often in the small hours where DST changes happen.
wall_times = st.one_of(
    st.times(),
    st.builds(
        time,
        hour=st.sampled_from([0, 1, 2, 3]),
        minute=st.sampled_from([0, 30, 59]),
        second=st.integers(0, 59),
    ),
)


@functools.cache
def transitions(tz: str) -> list[datetime]:
    """The instants (UTC) at which ``tz`` changes its offset in 2000-2040."""
    zone = ZoneInfo(tz)
    found = []
    day = datetime(2000, 1, 1, 12, tzinfo=UTC)
    while day.year <= 2040:
        low, high = day, day + timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
        day += timedelta(days=1)
    return found


@st.composite
def starts(draw: st.DrawFn, tz: str) -> datetime:
    """An aware start instant in 2000-2040, given as a wall time (either reading) in ``tz``,
    often within a few hours of a DST change."""
    zone = ZoneInfo(tz)
    if transitions(tz) and draw(st.booleans()):
        change = draw(st.sampled_from(transitions(tz))).astimezone(zone).replace(tzinfo=None)
        wall = change + timedelta(minutes=draw(st.integers(-180, 180)))
    else:
        day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
        wall = datetime.combine(day, draw(wall_times))
    return wall.replace(tzinfo=zone, fold=draw(st.integers(0, 1)))


@st.composite
def every_schedules(draw: st.DrawFn, zones: list[str], bounded: bool = True) -> Schedule:
    tz = draw(st.sampled_from(zones))
    unit = draw(st.sampled_from(list(Unit)))
    interval = draw(st.integers(1, 50))
    start = draw(starts(tz))
    until = count = None
    if bounded:
        if draw(st.booleans()):
            span = ROUGH[unit] * interval * TAKE
            until = start.astimezone(UTC) + span * draw(st.floats(0, 1.2))
        if draw(st.booleans()):
            count = draw(st.integers(1, TAKE + 5))
    return every(unit, start, tz, interval=interval, until=until, count=count)


def unbounded(schedule: Schedule) -> Schedule:
    return Schedule(
        kind=schedule.kind,
        unit=schedule.unit,
        interval=schedule.interval,
        start=schedule.start,
        expr=schedule.expr,
        timezone=schedule.timezone,
    )


# --- A. properties -------------------------------------------------------------------------------


@PROPERTY
@given(every_schedules(DST_ZONES + FIXED_ZONES))
def test_every_increases_never_repeats_and_respects_until_and_count(schedule: Schedule) -> None:
    series = take(schedule, TAKE + 10)
    assert all(t.tzinfo is not None for t in series)
    assert all(a < b for a, b in itertools.pairwise(series))
    assert len(set(series)) == len(series)
    if schedule.until is not None:
        assert all(t <= schedule.until for t in series)
    # Exactly the unbounded series, cut by count, then by until.
    free = take(unbounded(schedule), TAKE + 10)
    expected = free[: schedule.count] if schedule.count is not None else free
    expected = [t for t in expected if schedule.until is None or t <= schedule.until]
    assert series == expected
    if schedule.count is not None and schedule.until is None:
        assert len(series) == schedule.count


@PROPERTY
@given(every_schedules(DST_ZONES + FIXED_ZONES, bounded=False))
def test_every_follows_elapsed_time_or_the_wall_clock_and_never_lands_in_a_gap(
    schedule: Schedule,
) -> None:
    assert schedule.start is not None
    assert schedule.unit is not None
    zone = ZoneInfo(schedule.timezone)
    series = take(schedule)
    assert len(series) == TAKE
    if schedule.unit in ELAPSED_UNITS:
        step = ELAPSED_UNITS[schedule.unit] * schedule.interval
        start = schedule.start.astimezone(UTC)  # aware arithmetic in a ZoneInfo is wall time
        assert series == [start + k * step for k in range(TAKE)]
        return
    start_wall = schedule.start.astimezone(zone).replace(tzinfo=None)
    for k, instant in enumerate(series):
        wall = start_wall + CALENDAR_UNITS[schedule.unit] * (schedule.interval * k)
        reading = instant.astimezone(zone)
        if k == 0 and exists(schedule.start.replace(tzinfo=None), zone):
            # ``start`` is kept as given, even the second reading of an ambiguous hour.
            assert instant == schedule.start.astimezone(UTC)
            continue
        # Always the first reading of its wall time: an ambiguous time runs once, at its first.
        assert reading.replace(fold=0).astimezone(UTC) == instant
        assert reading.replace(tzinfo=None).replace(tzinfo=zone, fold=0) == reading
        if exists(wall, zone):
            assert reading.replace(tzinfo=None) == wall
        else:
            # In a gap: the first instant after it, so the clocks jumped over ``wall`` just now.
            just_before = (instant - timedelta(seconds=1)).astimezone(zone)
            assert just_before.replace(tzinfo=None) < wall < reading.replace(tzinfo=None)
            assert just_before.utcoffset() != reading.utcoffset()


def _fixed_offset_series(schedule: Schedule) -> list[datetime]:
    """The series computed independently, in UTC, for a zone without DST."""
    assert schedule.start is not None
    assert schedule.unit is not None
    offset = ZoneInfo(schedule.timezone).utcoffset(datetime(2020, 1, 1))
    assert offset is not None
    fixed = timezone(offset)
    start = schedule.start.astimezone(fixed)
    n = schedule.interval
    out = []
    for k in range(TAKE):
        if schedule.unit in ELAPSED_UNITS:
            instant = start + k * n * ELAPSED_UNITS[schedule.unit]
        elif schedule.unit is Unit.DAY:
            instant = start + timedelta(days=k * n)
        elif schedule.unit is Unit.WEEK:
            instant = start + timedelta(days=7 * k * n)
        else:
            months = k * n * (12 if schedule.unit is Unit.YEAR else 1)
            year, month0 = divmod(start.year * 12 + start.month - 1 + months, 12)
            day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
            instant = datetime.combine(date(year, month0 + 1, day), start.timetz())
        out.append(instant.astimezone(UTC))
    return out


@PROPERTY
@given(every_schedules(FIXED_ZONES, bounded=False))
def test_every_in_a_fixed_offset_zone_matches_an_independent_utc_computation(
    schedule: Schedule,
) -> None:
    assert take(schedule) == _fixed_offset_series(schedule)


@PROPERTY
@given(
    every_schedules(DST_ZONES + FIXED_ZONES),
    st.integers(0, TAKE),
    st.floats(0, 1, exclude_max=True),
    st.sampled_from(["between", "just before"]),
)
def test_next_occurrence_is_the_first_of_the_series_after_the_instant(
    schedule: Schedule, index: int, fraction: float, where: str
) -> None:
    series = take(schedule, TAKE + 10)
    if len(series) < 2:
        return
    i = min(index, len(series) - 2)
    if where == "between":
        # timedelta * float rounds to the microsecond: stay strictly before the next one.
        after = min(
            series[i] + (series[i + 1] - series[i]) * fraction,
            series[i + 1] - timedelta(microseconds=1),
        )
    else:
        after = series[i] - timedelta(microseconds=1)
    expected = next(t for t in series if t > after)
    assert next_occurrence(schedule, after) == expected
    rest = [t for t in series if t > after]
    assert take(schedule, len(rest), after=after) == rest
    assert next_occurrence(schedule, series[-1]) == next(
        iter(take(schedule, len(series) + 1)[len(series) :]), None
    )


@PROPERTY
@given(
    st.sampled_from(
        ["30 2 * * *", "*/15 * * * *", "0 */6 * * 1-5", "0 0 31 * *", "0 1,2,3 * * *", "5 4 * * 0"]
    ),
    st.sampled_from(DST_ZONES + FIXED_ZONES),
    st.data(),
)
def test_cron_increases_and_next_occurrence_agrees_with_the_series(
    expr: str, tz: str, data: st.DataObject
) -> None:
    start = data.draw(starts(tz))
    count = data.draw(st.none() | st.integers(1, TAKE))
    schedule = cron(expr, start, tz, count=count)
    series = take(schedule, TAKE)
    assert all(a < b for a, b in itertools.pairwise(series))
    assert len(series) == (count or TAKE)
    if "*" not in expr.split()[1]:
        # At fixed hours an ambiguous wall time runs once, at its first reading (a wildcard hour
        # runs on elapsed time, as Debian cron does, so in both readings of a repeated hour).
        zone = ZoneInfo(tz)
        assert all(t.astimezone(zone).replace(fold=0).astimezone(UTC) == t for t in series)
    if len(series) >= 2:
        i = data.draw(st.integers(0, len(series) - 2))
        after = series[i] + (series[i + 1] - series[i]) * data.draw(st.floats(0, 0.99))
        assert next_occurrence(schedule, after) == series[i + 1]


@PROPERTY
@given(every_schedules(DST_ZONES + FIXED_ZONES))
@example(every(Unit.DAY, datetime.fromisoformat("2027-11-07T01:30:00-05:00"), "America/New_York"))
def test_every_never_runs_before_its_start(schedule: Schedule) -> None:
    assert schedule.start is not None
    # A real instant: a wall time in a gap has no instant of its own (see the named test).
    start = schedule.start.astimezone(UTC)
    schedule = every(schedule.unit, start, schedule.timezone, interval=schedule.interval)
    assert all(t >= start for t in take(schedule))


# --- B. named rules ------------------------------------------------------------------------------


def test_monthly_from_january_31_clamps_and_returns_to_the_31st() -> None:
    series = take(every(Unit.MONTH, datetime(2027, 1, 31, 10, tzinfo=UTC)), 7)
    assert [t.date() for t in series] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
        date(2027, 6, 30),
        date(2027, 7, 31),
    ]
    assert all(t.time() == time(10) for t in series)


def test_monthly_from_january_31_in_a_leap_year() -> None:
    series = take(every(Unit.MONTH, datetime(2028, 1, 31, 10, tzinfo=ROME), "Europe/Rome"), 4)
    assert [t.astimezone(ROME).date() for t in series] == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]


def test_every_two_months_from_december_31_crosses_the_year() -> None:
    series = take(every(Unit.MONTH, datetime(2027, 12, 31, tzinfo=UTC), interval=2), 4)
    assert [t.date() for t in series] == [
        date(2027, 12, 31),
        date(2028, 2, 29),
        date(2028, 4, 30),
        date(2028, 6, 30),
    ]


def test_yearly_from_february_29_clamps_and_returns_to_the_29th() -> None:
    series = take(every(Unit.YEAR, datetime(2028, 2, 29, 8, tzinfo=UTC)), 5)
    assert [t.date() for t in series] == [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
    ]


def test_daily_0230_in_rome_runs_at_0300_on_the_spring_forward_day() -> None:
    series = take(every(Unit.DAY, datetime(2027, 3, 26, 2, 30, tzinfo=ROME), "Europe/Rome"), 4)
    assert local(series, ROME) == [
        "2027-03-26T02:30:00+01:00",
        "2027-03-27T02:30:00+01:00",
        "2027-03-28T03:00:00+02:00",  # 02:30 does not exist: the first instant after the gap
        "2027-03-29T02:30:00+02:00",
    ]
    assert series[2] == datetime(2027, 3, 28, 1, tzinfo=UTC)


def test_daily_0230_in_rome_runs_once_on_the_fall_back_day() -> None:
    series = take(every(Unit.DAY, datetime(2027, 10, 29, 2, 30, tzinfo=ROME), "Europe/Rome"), 4)
    assert local(series, ROME) == [
        "2027-10-29T02:30:00+02:00",
        "2027-10-30T02:30:00+02:00",
        "2027-10-31T02:30:00+02:00",  # ambiguous: the first of its two instants, only
        "2027-11-01T02:30:00+01:00",
    ]
    assert [t.astimezone(ROME).date() for t in series].count(date(2027, 10, 31)) == 1


@pytest.mark.parametrize(
    ("start", "hours"),
    [
        # Spring forward 2027-03-14: the wall hour 02:00 never happens.
        (datetime(2027, 3, 13, 22, tzinfo=NEW_YORK), [22, 23, 0, 1, 3, 4, 5, 6]),
        # Fall back 2027-11-07: the wall hour 01:00 happens twice.
        (datetime(2027, 11, 6, 22, tzinfo=NEW_YORK), [22, 23, 0, 1, 1, 2, 3, 4]),
    ],
    ids=["march", "november"],
)
def test_hourly_in_new_york_is_elapsed_time_across_dst(start: datetime, hours: list[int]) -> None:
    series = take(every(Unit.HOUR, start, "America/New_York"), 8)
    assert all((b - a) == timedelta(seconds=3600) for a, b in itertools.pairwise(series))
    assert [t.astimezone(NEW_YORK).hour for t in series] == hours


def test_weekly_across_a_dst_change_keeps_the_local_hour() -> None:
    series = take(every(Unit.WEEK, datetime(2027, 3, 21, 9, tzinfo=ROME), "Europe/Rome"), 3)
    assert local(series, ROME) == [
        "2027-03-21T09:00:00+01:00",
        "2027-03-28T09:00:00+02:00",
        "2027-04-04T09:00:00+02:00",
    ]
    assert series[1] - series[0] == timedelta(days=7, hours=-1)
    sydney = ZoneInfo("Australia/Sydney")
    series = take(every(Unit.WEEK, datetime(2027, 3, 29, 9, tzinfo=sydney), "Australia/Sydney"), 3)
    assert [t.astimezone(sydney).hour for t in series] == [9, 9, 9]
    assert series[1] - series[0] == timedelta(days=7, hours=1)


def test_cron_0230_in_rome_across_both_changes() -> None:
    spring = take(cron("30 2 * * *", datetime(2027, 3, 27, tzinfo=ROME), "Europe/Rome"), 3)
    assert local(spring, ROME) == [
        "2027-03-27T02:30:00+01:00",
        "2027-03-28T03:00:00+02:00",
        "2027-03-29T02:30:00+02:00",
    ]
    autumn = take(cron("30 2 * * *", datetime(2027, 10, 30, tzinfo=ROME), "Europe/Rome"), 3)
    assert local(autumn, ROME) == [
        "2027-10-30T02:30:00+02:00",
        "2027-10-31T02:30:00+02:00",
        "2027-11-01T02:30:00+01:00",
    ]


def test_cron_includes_a_start_on_the_minute_but_nothing_before_it() -> None:
    on_the_minute = datetime(2027, 5, 3, 10, tzinfo=UTC)
    assert take(cron("0 10 * * *", on_the_minute), 1) == [on_the_minute]
    later = on_the_minute + timedelta(milliseconds=500)
    assert take(cron("0 10 * * *", later), 1) == [on_the_minute + timedelta(days=1)]


def test_every_day_from_the_second_reading_of_an_ambiguous_time_starts_at_start() -> None:
    # An exact instant, as the API receives it: 01:30 EST, the second 01:30 of 2027-11-07.
    second = datetime.fromisoformat("2027-11-07T01:30:00-05:00")
    series = take(every(Unit.DAY, second, "America/New_York"), 2)
    assert series[0] == second  # not 01:30 EDT, an hour before the start
    assert local(series, NEW_YORK)[1] == "2027-11-08T01:30:00-05:00"


def test_every_day_from_a_start_wall_time_in_the_gap_starts_after_the_gap() -> None:
    start = datetime(2027, 3, 28, 2, 30, tzinfo=ROME)  # does not exist
    series = take(every(Unit.DAY, start, "Europe/Rome"), 2)
    assert local(series, ROME) == ["2027-03-28T03:00:00+02:00", "2027-03-29T02:30:00+02:00"]


def test_a_past_start_or_at_is_due_now_and_a_future_one_when_it_comes() -> None:
    now = datetime(2027, 6, 1, 12, tzinfo=UTC)
    past, future = now - timedelta(days=40), now + timedelta(minutes=5)
    assert first_due(Schedule(), now) == now
    assert first_due(Schedule(kind=ScheduleKind.AT, at=past), now) == now
    assert first_due(Schedule(kind=ScheduleKind.AT, at=future), now) == future
    assert first_due(every(Unit.HOUR, past), now) == now
    assert first_due(every(Unit.DAY, future), now) == future
    assert first_due(cron("0 3 * * *", past), now) == now
    # Then the next future occurrence, never a storm of catch-up runs.
    assert next_occurrence(every(Unit.HOUR, past), now) == now + timedelta(hours=1)


def test_at_has_one_occurrence_and_direct_none() -> None:
    at = datetime(2027, 6, 1, 12, tzinfo=ROME)
    schedule = Schedule(kind=ScheduleKind.AT, at=at, timezone="Europe/Rome")
    assert take(schedule) == [at]
    assert take(schedule, after=at) == []
    assert take(Schedule()) == []


def test_a_periodic_schedule_without_start_must_be_anchored() -> None:
    schedule = Schedule(kind=ScheduleKind.EVERY, unit=Unit.DAY)
    with pytest.raises(InvalidSchedule):
        take(schedule)
    now = datetime(2027, 6, 1, 12, tzinfo=UTC)
    assert take(schedule.anchored(now), 2) == [now, now + timedelta(days=1)]


START = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (
            {
                "kind": ScheduleKind.EVERY,
                "unit": Unit.DAY,
                "start": START,
                "until": START - timedelta(seconds=1),
            },
            "until is before start",
        ),
        (
            {"kind": ScheduleKind.EVERY, "unit": Unit.DAY, "start": START, "interval": 0},
            "interval must be at least 1",
        ),
        (
            {"kind": ScheduleKind.EVERY, "unit": Unit.DAY, "start": START, "interval": -3},
            "interval must be at least 1",
        ),
        (
            {"kind": ScheduleKind.EVERY, "unit": Unit.DAY, "start": START, "count": 0},
            "count must be at least 1",
        ),
        ({"kind": ScheduleKind.EVERY, "start": START}, "needs a unit"),
        ({"kind": ScheduleKind.EVERY, "unit": "fortnight", "start": START}, "fortnight"),
        (
            {"kind": ScheduleKind.EVERY, "unit": Unit.DAY, "timezone": "Mars/Olympus"},
            "unknown time zone 'Mars/Olympus'",
        ),
        ({"kind": ScheduleKind.AT, "at": START, "timezone": ""}, "unknown time zone"),
        ({"kind": ScheduleKind.AT}, "needs 'at'"),
        ({"kind": ScheduleKind.AT, "at": datetime(2027, 1, 1)}, "at must carry its offset"),
        ({"kind": ScheduleKind.CRON, "expr": "61 * * * *"}, "bad cron expression '61 * * * *'"),
        ({"kind": ScheduleKind.CRON, "expr": "* * * * * *"}, "5 fields"),
        ({"kind": ScheduleKind.CRON, "expr": "a b c d e"}, "bad cron expression"),
        ({"kind": ScheduleKind.CRON}, "5 fields"),
    ],
)
def test_invalid_schedules_are_refused_with_a_clear_message(
    fields: dict[str, object], why: str
) -> None:
    with pytest.raises(InvalidSchedule, match="invalid schedule") as caught:
        Schedule(**fields)
    assert isinstance(caught.value, InvalidRequest)
    assert why in str(caught.value)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"kind": "every", "unit": "fortnight", "start": "2027-01-01T00:00:00+00:00"}, "fortnight"),
        ({"kind": "weekly"}, "weekly"),
        ({"kind": "every", "unit": "day", "timezone": "Nowhere/Town"}, "unknown time zone"),
        ({"kind": "cron", "expr": "* * *"}, "5 fields"),
    ],
)
def test_invalid_schedule_json_is_refused_with_a_clear_message(
    data: dict[str, object], why: str
) -> None:
    with pytest.raises(InvalidSchedule, match=why):
        Schedule.from_json(data)


def test_count_between_a_three_day_outage_of_an_hourly_schedule() -> None:
    schedule = every(Unit.HOUR, datetime(2027, 3, 10, 0, tzinfo=NEW_YORK), "America/New_York")
    # An occurrence, in UTC so that "3 days" is 72 elapsed hours; the outage spans DST.
    down = datetime(2027, 3, 12, 5, tzinfo=NEW_YORK).astimezone(UTC)
    assert count_between(schedule, down, down + timedelta(days=3)) == 73  # both ends inclusive
    assert count_between(schedule, down, down + timedelta(days=3, microseconds=-1)) == 72
    assert count_between(schedule, down + timedelta(minutes=30), down + timedelta(days=3)) == 72
    assert count_between(schedule, down, down) == 1
    assert count_between(schedule, down, down + timedelta(days=3), limit=10) == 10


def test_a_three_day_outage_coalesces_into_one_run_standing_for_every_missed_occurrence() -> None:
    schedule = every(Unit.HOUR, datetime(2027, 3, 10, 0, tzinfo=UTC))
    due = datetime(2027, 3, 12, 5, tzinfo=UTC)
    now = due + timedelta(days=3, minutes=2)
    assert occurrences_due(schedule, due, now) == 73
    assert next_occurrence(schedule, now) == due + timedelta(days=3, hours=1)
    assert occurrences_due(schedule, due, due) == 1
    assert occurrences_due(Schedule(kind=ScheduleKind.AT, at=due), due, now) == 1


def test_occurrences_due_while_a_run_is_ongoing_are_skipped() -> None:
    schedule = every(Unit.MINUTE, datetime(2027, 3, 10, 0, tzinfo=UTC), interval=10)
    started = datetime(2027, 3, 10, 1, tzinfo=UTC)  # the run for 01:00
    assert after_run(schedule, started, started + timedelta(minutes=25)) == (
        2,  # 01:10 and 01:20 came due while it ran
        datetime(2027, 3, 10, 1, 30, tzinfo=UTC),
    )
    assert after_run(schedule, started, started + timedelta(minutes=5)) == (
        0,
        datetime(2027, 3, 10, 1, 10, tzinfo=UTC),
    )
    ending = every(Unit.MINUTE, started, interval=10, count=2)
    assert after_run(ending, started, started + timedelta(minutes=30)) == (1, None)


@pytest.mark.parametrize(
    ("wall", "zone", "expected"),
    [
        # Spring forward: 02:30 does not exist; the clocks jump 02:00 → 03:00 at 01:00 UTC.
        (datetime(2027, 3, 28, 2, 30), "Europe/Rome", datetime(2027, 3, 28, 1, tzinfo=UTC)),
        (datetime(2027, 3, 28, 2, 0), "Europe/Rome", datetime(2027, 3, 28, 1, tzinfo=UTC)),
        (
            datetime(2027, 3, 14, 2, 59, 59),
            "America/New_York",
            datetime(2027, 3, 14, 7, tzinfo=UTC),
        ),
        # Lord Howe moves its clocks by 30 minutes: 02:00 → 02:30 at 15:30 UTC.
        (
            datetime(2027, 10, 3, 2, 10),
            "Australia/Lord_Howe",
            datetime(2027, 10, 2, 15, 30, tzinfo=UTC),
        ),
        # Fall back: 02:30 happens twice; the first is +02:00.
        (datetime(2027, 10, 31, 2, 30), "Europe/Rome", datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),
        (
            datetime(2027, 11, 7, 1, 30),
            "America/New_York",
            datetime(2027, 11, 7, 5, 30, tzinfo=UTC),
        ),
        # Ordinary times, one either side of the changes.
        (
            datetime(2027, 3, 28, 1, 59, 59),
            "Europe/Rome",
            datetime(2027, 3, 28, 0, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(2027, 7, 1, 12, 0, 0, 5),
            "Europe/Rome",
            datetime(2027, 7, 1, 10, 0, 0, 5, tzinfo=UTC),
        ),
        (datetime(2027, 7, 1, 12), "UTC", datetime(2027, 7, 1, 12, tzinfo=UTC)),
    ],
)
def test_to_instant(wall: datetime, zone: str, expected: datetime) -> None:
    instant = to_instant(wall, ZoneInfo(zone))
    assert instant == expected
    assert instant.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(),
        Schedule(
            kind=ScheduleKind.AT, at=datetime(2027, 6, 1, 12, tzinfo=ROME), timezone="Europe/Rome"
        ),
        every(Unit.MONTH, datetime(2027, 1, 31, 10, tzinfo=ROME), "Europe/Rome", interval=3),
        every(
            Unit.MINUTE,
            datetime(2027, 1, 1, tzinfo=UTC),
            interval=15,
            until=datetime(2027, 2, 1, tzinfo=UTC),
            count=40,
        ),
        cron("30 2 * * *", datetime(2027, 3, 1, tzinfo=ROME), "Europe/Rome", count=5),
    ],
    ids=["direct", "at", "every", "every-bounded", "cron"],
)
def test_json_round_trip(schedule: Schedule) -> None:
    body = json.loads(json.dumps(schedule.to_json()))
    assert body["kind"] == schedule.kind.value
    for name in ("at", "start", "until"):
        if name in body:
            assert body[name].endswith("+00:00")
    again = Schedule.from_json(body)
    assert again == schedule
    assert take(again, 5) == take(schedule, 5)


def test_preview_of_the_issue_every_month_from_january_31_in_rome() -> None:
    start = datetime(2027, 1, 31, 10, tzinfo=ROME)
    series = take(every(Unit.MONTH, start, "Europe/Rome"), 4)
    assert local(series, ROME) == [
        "2027-01-31T10:00:00+01:00",
        "2027-02-28T10:00:00+01:00",
        "2027-03-31T10:00:00+02:00",
        "2027-04-30T10:00:00+02:00",
    ]
    assert all(t.utcoffset() == timedelta(0) for t in series)


def test_a_start_in_a_gap_keeps_its_wall_time_through_json() -> None:
    rome = ZoneInfo("Europe/Rome")
    start = datetime(2027, 3, 28, 2, 30, tzinfo=rome)  # skipped by the clocks that night
    schedule = Schedule(ScheduleKind.EVERY, unit=Unit.DAY, start=start, timezone="Europe/Rome")
    again = Schedule.from_json(schedule.to_json())
    walls = [t.astimezone(rome).strftime("%d %H:%M") for t in take(again, 3)]
    assert walls == ["28 03:00", "29 02:30", "30 02:30"]
    assert take(again, 3) == take(schedule, 3)


def test_a_past_series_with_nothing_left_has_no_first_run() -> None:
    now = datetime(2027, 6, 1, tzinfo=UTC)
    ended = every(
        Unit.DAY, datetime(2027, 1, 1, tzinfo=UTC), until=datetime(2027, 2, 1, tzinfo=UTC)
    )
    spent = every(Unit.DAY, datetime(2027, 1, 1, tzinfo=UTC), count=3)
    assert first_due(ended, now) is None
    assert first_due(spent, now) is None
    assert list(upcoming(ended, now)) == []
