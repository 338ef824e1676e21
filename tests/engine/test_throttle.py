"""Bandwidth limits: the token bucket on a fake clock, and one real copy held to its rate."""

from __future__ import annotations

import os
import time

import pytest

from ferry.domain.options import parse_rate
from ferry.engine.copy import CopyRequest, copy_object
from ferry.engine.throttle import Throttle
from ferry.errors import InvalidRequest


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_holds_the_average_to_the_rate() -> None:
    fake = FakeTime()
    throttle = Throttle(1000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(10):
        throttle.consume(500)
    assert fake.now == pytest.approx(5.0)


def test_time_spent_elsewhere_is_not_slept_again() -> None:
    fake = FakeTime()
    throttle = Throttle(1000, clock=fake.clock, sleep=fake.sleep)
    fake.now = 3.0  # the copy was slow by itself
    throttle.consume(2000)
    assert fake.now == 3.0


def test_blocks_are_about_a_tenth_of_a_second() -> None:
    assert Throttle(1024 * 1024).block_size == 1024 * 1024 // 10
    assert Throttle(1000).block_size == 16 * 1024
    assert Throttle(10**10).block_size == 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10M", 10 * 1024**2), ("500K", 512_000), ("1G", 1024**3), ("2048", 2048), ("1.5M", 1572864)],
)
def test_rates_parse_like_rclone(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "0", "-1M", ""])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_rate(text)


def test_a_5_mb_copy_at_1m_takes_about_5_seconds(src, dst, src_root) -> None:
    (src_root / "five.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    started = time.monotonic()
    copy_object(CopyRequest(src, "five.bin", dst, "five.bin", bandwidth=parse_rate("1M")))
    assert 4.0 <= time.monotonic() - started <= 6.5


def test_a_new_rate_applies_from_then_on() -> None:
    """A channel's share changes while a copy runs (defect 18.15): the bucket starts again at
    the new rate, neither owing nor crediting what moved before."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(100, clock=lambda: now[0], sleep=sleep)
    throttle.consume(100)  # a second's worth at 100 B/s
    throttle.set_rate(1000)
    throttle.consume(1000)  # a second's worth at the new rate
    assert slept == [1.0, 1.0]
    assert throttle.block_size == 16 * 1024


def test_no_rate_never_waits_until_one_is_set() -> None:
    fake = FakeTime()
    throttle = Throttle(None, clock=fake.clock, sleep=fake.sleep)
    throttle.consume(10**12)
    assert fake.now == 0.0
    assert throttle.block_size == 4 * 1024 * 1024
    throttle.set_rate(1000)
    throttle.consume(1000)
    assert fake.now == pytest.approx(1.0)


def test_a_throttled_copy_unlimited_now_takes_the_rate_set_while_it_runs(
    src, dst, src_root
) -> None:
    """Issue 24, item 4: a channel's timetable says "off" when the copy starts and sets 4 MiB/s
    after its first 8 MiB; the last 8 MiB then take two seconds. Without ``throttled`` the same
    request is the kernel's copy, which never asks for a rate."""
    mib = 1024 * 1024
    (src_root / "sixteen.bin").write_bytes(os.urandom(16 * mib))
    asked: list[int | None] = []

    def rate_now() -> int | None:
        asked.append(None if len(asked) < 2 else 4 * mib)
        return asked[-1]

    started = time.monotonic()
    request = CopyRequest(src, "sixteen.bin", dst, "a.bin", throttled=True, bandwidth_now=rate_now)
    copy_object(request)
    assert time.monotonic() - started >= 1.5
    assert asked[:2] == [None, None]
    assert asked[2] == 4 * mib

    asked.clear()
    copy_object(CopyRequest(src, "sixteen.bin", dst, "b.bin", bandwidth_now=rate_now))
    assert asked == []
