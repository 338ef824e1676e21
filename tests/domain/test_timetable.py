"""Bandwidth timetables (issue 24, item 4): what they accept, refuse, and the rate they give."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ferry.domain.channels import Channel
from ferry.domain.timetable import Timetable
from ferry.errors import InvalidRequest

ROME = ZoneInfo("Europe/Rome")
MI = 1024 * 1024


def at(text: str, tz: ZoneInfo = ROME) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


WORKDAYS = Timetable.parse("Mon-Fri 08:00,50M; 19:00,off")


@pytest.mark.parametrize(
    ("when", "rate"),
    [
        ("2026-12-07 07:59:59", None),  # Monday before 08:00: Sunday's 19:00 off
        ("2026-12-07 08:00:00", 50 * MI),
        ("2026-12-11 18:59:59", 50 * MI),  # Friday
        ("2026-12-11 19:00:00", None),
        ("2026-12-12 10:00:00", None),  # Saturday: no weekday entry, Friday's off holds
    ],
)
def test_the_rate_is_the_last_entry_to_start_before(when: str, rate: int | None) -> None:
    assert WORKDAYS.rate_at(at(when)) == rate


def test_the_week_wraps_to_its_last_entry() -> None:
    timetable = Timetable.parse("Wed 12:00,1K; Sat 12:00,2K")
    assert timetable.rate_at(at("2026-12-07 00:00")) == 2048  # Monday: Saturday's
    assert timetable.rate_at(at("2026-12-10 00:00")) == 1024  # Thursday: Wednesday's


def test_days_may_be_listed_and_ranges_may_wrap() -> None:
    timetable = Timetable.parse("Fri-Mon 01:00,1K; Wed,Thu 01:00,2K; 23:00:30,off")
    assert [entry.at for entry in timetable.entries if entry.rate == 1024] == [
        3600,  # Monday
        4 * 86400 + 3600,
        5 * 86400 + 3600,
        6 * 86400 + 3600,
    ]
    assert timetable.rate_at(at("2026-12-09 01:00")) == 2048  # Wednesday
    assert timetable.rate_at(at("2026-12-08 01:00")) is None  # Tuesday: Monday's 23:00:30


def test_a_rate_alone_holds_all_week() -> None:
    always = Timetable.parse("10M")
    assert always.rate_at(at("2026-12-09 03:00")) == 10 * MI
    assert always.next_change(at("2026-12-09 03:00")) is None


def test_the_next_change_skips_entries_that_keep_the_rate() -> None:
    timetable = Timetable.parse("08:00,1M; 12:00,1M; 19:00,off")
    assert timetable.next_change(at("2026-12-07 09:00")) == at("2026-12-07 19:00")
    assert timetable.seconds_to_change(at("2026-12-07 09:00")) == 10 * 3600


def test_the_seconds_to_a_change_count_real_time_across_a_clock_change() -> None:
    """Rome moves from 02:00 to 03:00 on 2027-03-28: 01:30 to 03:30 is one hour."""
    timetable = Timetable.parse("01:00,2M; 03:30,1M")
    assert timetable.seconds_to_change(at("2027-03-28 01:30")) == 3600


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "at least one entry"),
        ("Mon 25:00,1M", "no such time of day"),
        ("Foo 08:00,1M", "'Foo' is not a day"),
        ("08:00,fast", "'fast' is not a rate"),
        ("08:00,1M; 08:00,2M", "another entry starts at the same time"),
        ("08:00 1M", "is not a timetable entry"),
        ("08:00,0", "at least 1"),
        ("; ".join(f"{h:02}:{m:02},1M" for h in range(24) for m in range(0, 60, 5)), "at most"),
    ],
)
def test_a_wrong_timetable_is_refused_with_the_entry_at_fault(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        Timetable.parse(text)


def test_a_channel_has_a_bandwidth_or_a_timetable_and_a_real_time_zone() -> None:
    with pytest.raises(InvalidRequest, match="not both"):
        Channel("A", "B", bandwidth=10, timetable=WORKDAYS)
    with pytest.raises(InvalidRequest, match="not a time zone"):
        Channel("A", "B", timetable=WORKDAYS, timezone="Mars/Olympus")
    channel = Channel("A", "B", timetable=WORKDAYS, timezone="Europe/Rome")
    utc_monday_0730 = datetime.fromisoformat("2026-12-07 07:30+00:00")  # 08:30 in Rome
    assert channel.bandwidth_at(utc_monday_0730) == 50 * MI
    assert channel.share_of_bandwidth(2, utc_monday_0730) == 25 * MI
