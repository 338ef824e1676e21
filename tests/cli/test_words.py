"""A transfer's schedule in words, its times in the reader's zone (issue 20, part 3)."""

from __future__ import annotations

import pytest

from ferry.cli.words import reader_zone, schedule_in_words, when
from ferry.errors import InvalidRequest

ROME = reader_zone("Europe/Rome")


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ({"kind": "direct"}, "once, now"),
        ({"kind": "at", "at": "2026-07-01T00:30:00+00:00"}, "once, at 2026-07-01 02:30:00 CEST"),
        (
            {
                "kind": "every",
                "unit": "hour",
                "interval": 2,
                "start": "2026-12-06T01:30:00+00:00",
                "timezone": "Europe/Rome",
                "count": 5,
            },
            "every 2 hours in Europe/Rome, from 2026-12-06 02:30:00 CET, 5 times",
        ),
        (
            {
                "kind": "cron",
                "expr": "30 2 * * *",
                "timezone": "Europe/Rome",
                "until": "2027-01-01T00:00:00+00:00",
            },
            "cron '30 2 * * *' in Europe/Rome, until 2027-01-01 01:00:00 CET",
        ),
        ({"kind": "every", "unit": "day", "interval": 1, "timezone": "UTC"}, "every day in UTC"),
    ],
)
def test_a_schedule_reads_as_words_in_the_readers_zone(schedule, words) -> None:
    assert schedule_in_words(schedule, ROME) == words


def test_times_are_the_readers_own_and_a_bad_zone_is_one_line() -> None:
    assert when("2026-12-06T12:00:00Z", reader_zone("Asia/Tokyo")) == "2026-12-06 21:00:00 JST"
    assert when(None, ROME) == "–"
    with pytest.raises(InvalidRequest, match="not a time zone"):
        reader_zone("Mars/Olympus")
