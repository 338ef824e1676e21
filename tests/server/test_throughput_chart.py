"""The overview's throughput chart: a minute's bar is as tall as its rate on the axis, whose
top is a round figure at or above the peak; the words say the peak and the last minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry.server.ui.chart import MIB, PLOT_H, TOP, axis_top, per_minute, throughput_chart
from ferry.store.abc import LinkActivity

SINCE = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)


def link(source: str, *minutes: tuple[int, int]) -> LinkActivity:
    return LinkActivity(source, "b", per_minute=minutes)


def test_the_links_minutes_add_up_and_the_windows_ends_take_what_falls_past_them() -> None:
    moved = per_minute([link("a", (0, 1), (59, 2)), link("c", (59, 3), (60, 4), (-1, 5))])
    assert len(moved) == 60
    assert (moved[0], moved[59], sum(moved[1:59])) == (6, 9, 0)


def test_the_axis_ends_at_a_round_figure_at_or_above_the_peak() -> None:
    assert [axis_top(r) for r in (0, 0.03, 1, 1.5, 3, 7, 12)] == [1, 0.05, 1, 2, 5, 10, 20]


def test_the_peak_minutes_bar_fills_its_share_of_the_axis_and_the_words_say_it() -> None:
    peak = 90 * MIB  # 1.5 MiB/s over its minute
    chart = throughput_chart([link("a", (10, peak), (59, 30 * MIB))], SINCE)
    assert len(chart.bars) == 60
    tallest = chart.bars[10]
    assert tallest.start == SINCE + timedelta(minutes=10)
    assert tallest.label == "11:10 UTC: 90.0 MiB, 1.50 MiB/s"
    assert tallest.height == PLOT_H * 1.5 / 2  # the axis goes to 2 MiB/s
    assert tallest.y + tallest.height == TOP + PLOT_H
    assert chart.bars[0].height == 0
    assert [t.label for t in chart.rate_ticks] == ["0 MiB/s", "1 MiB/s", "2 MiB/s"]
    assert chart.peak is tallest
    assert chart.current_mib_per_s == 0.5
    assert chart.summary == (
        "Throughput of the last hour: peak 1.50 MiB/s in the minute from 11:10 UTC, now 0.50 MiB/s"
    )


def test_a_quiet_hour_says_so() -> None:
    chart = throughput_chart([link("a")], SINCE)
    assert chart.peak is None
    assert chart.summary == "Throughput of the last hour: nothing moved"
    assert all(bar.height == 0 for bar in chart.bars)
    assert [t.label for t in chart.rate_ticks] == ["0 MiB/s", "0.5 MiB/s", "1 MiB/s"]
