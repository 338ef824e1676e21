"""The overview's throughput chart: the bytes moved in each minute of the last hour, drawn by
the server as an SVG (no script draws it, so it refreshes with the figures it sits among)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ferry.server.ui.render import size
from ferry.store.abc import LinkActivity

MINUTES = 60
MIB = 1 << 20
WIDTH, HEIGHT = 720, 180  # the drawing's own units (its viewBox); CSS scales it
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 10, 22  # room for the axes' labels
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
GAP = 1.0  # between bars
TIME_TICKS = (60, 45, 30, 15, 0)  # minutes ago


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute: its start, the bytes moved in it, its words, and its rectangle."""

    start: datetime
    bytes: int
    mib_per_s: float
    label: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Tick:
    label: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class ThroughputChart:
    bars: list[Bar]
    rate_ticks: list[Tick]  # left axis, MiB/s
    time_ticks: list[Tick]  # bottom axis, minutes ago
    peak: Bar | None  # the fullest minute, None when nothing moved
    current_mib_per_s: float  # the last minute's rate
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_width: int = PLOT_W
    plot_height: int = PLOT_H

    @property
    def summary(self) -> str:
        """What the chart says, in words (its title and label for those who do not see it)."""
        if self.peak is None:
            return "Throughput of the last hour: nothing moved"
        return (
            f"Throughput of the last hour: peak {rate(self.peak.mib_per_s)}"
            f" in the minute from {self.peak.start:%H:%M} UTC,"
            f" now {rate(self.current_mib_per_s)}"
        )


def rate(mib_per_s: float) -> str:
    return f"{mib_per_s:.2f} MiB/s" if mib_per_s < 100 else f"{mib_per_s:.0f} MiB/s"


def per_minute(links: Iterable[LinkActivity]) -> list[int]:
    """The bytes of every link in each of the window's minutes, oldest first; a task that
    ended at the window's very end (or, the clocks apart, after it) counts in its last."""
    moved = [0] * MINUTES
    for link in links:
        for minute, amount in link.per_minute:
            moved[min(max(minute, 0), MINUTES - 1)] += amount
    return moved


def axis_top(peak_mib_per_s: float) -> float:
    """The rate axis's top: the least of 1, 2 or 5 times a power of ten at or above the peak
    (1 MiB/s when nothing moved)."""
    if peak_mib_per_s <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(peak_mib_per_s))
    return float(next(f * power for f in (1, 2, 5, 10) if f * power >= peak_mib_per_s))


def throughput_chart(links: Iterable[LinkActivity], since: datetime) -> ThroughputChart:
    """The chart of the window starting at ``since``, of every link in ``links``."""
    moved = per_minute(links)
    rates = [amount / 60 / MIB for amount in moved]
    top = axis_top(max(rates))
    slot = PLOT_W / MINUTES
    bars = []
    for k, (amount, mib_per_s) in enumerate(zip(moved, rates, strict=True)):
        height = PLOT_H * mib_per_s / top
        start = since + timedelta(minutes=k)
        bars.append(
            Bar(
                start=start,
                bytes=amount,
                mib_per_s=mib_per_s,
                label=f"{start:%H:%M} UTC: {size(amount)}, {rate(mib_per_s)}",
                x=round(LEFT + k * slot + GAP / 2, 2),
                y=round(TOP + PLOT_H - height, 2),
                width=round(slot - GAP, 2),
                height=round(height, 2),
            )
        )
    rate_ticks = [
        Tick(f"{top * f:g} MiB/s", LEFT - 6, round(TOP + PLOT_H * (1 - f), 2)) for f in (0, 0.5, 1)
    ]
    time_ticks = [
        Tick("now" if ago == 0 else f"−{ago} min", LEFT + PLOT_W * (1 - ago / MINUTES), HEIGHT - 6)
        for ago in TIME_TICKS
    ]
    peak = max(bars, key=lambda bar: bar.bytes)
    return ThroughputChart(
        bars, rate_ticks, time_ticks, peak if peak.bytes else None, bars[-1].mib_per_s
    )
