"""The optimizer's control law against the mock storage's link model: it finds the peak from a
start of 2, stays near it, and follows it when the link changes."""

from __future__ import annotations

import random

import pytest

from ferry.domain.optimizer import (
    Decision,
    Search,
    Window,
    decide,
    settle_s,
    start,
    window_for,
)
from ferry.engine.mock_link import LinkModel

WINDOW_S = 5.0
OBJECT = 1024 * 1024
FLOOR, CEILING = 1, 64
RNG = random.Random(0)


def window_at(
    limit: int, model: LinkModel, seconds: float, noise: float, rng: random.Random
) -> Window:
    """What a channel with a long queue moves in ``seconds`` at ``limit`` copies at once."""
    rate = model.total(limit) * (1 + rng.uniform(-noise, noise))
    moved = int(rate * seconds)
    return Window(seconds, succeeded=moved // OBJECT, failed=0, bytes=moved, active=limit)


def limits_over(
    phases: list[tuple[LinkModel, int]], noise: float = 0.0, seed: int = 0
) -> list[int]:
    """The limit in force at each second, through phases of (link, seconds); each window as
    long as ``window_for`` says."""
    rng = random.Random(seed)
    search, limits = start(2), []
    timeline = [model for model, seconds in phases for _ in range(seconds)]
    while len(limits) < len(timeline):
        seconds = window_for(search, WINDOW_S)
        model = timeline[len(limits)]
        limits += [search.limit] * int(seconds)
        window = window_at(search.limit, model, seconds, noise, rng)
        search, _ = decide(search, window, FLOOR, CEILING)
    return limits[: len(timeline)]


def settled_by(limits: list[int], low: int, high: int) -> int:
    """The first second from which every limit stays within low … high."""
    for k in range(len(limits)):
        if all(low <= n <= high for n in limits[k:]):
            return k
    return len(limits)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_it_settles_at_the_peak_and_follows_it_when_it_moves(noise: float, seed: int) -> None:
    limits = limits_over([(LinkModel(peak=12), 240), (LinkModel(peak=6), 240)], noise, seed)
    first, second = limits[:240], limits[240:]
    assert settled_by(first, 9, 15) <= 120, first
    assert settled_by(second, 3, 9) <= 120, second


def test_it_follows_a_peak_that_moves_far_up() -> None:
    limits = limits_over([(LinkModel(peak=6), 120), (LinkModel(peak=40), 360)])
    assert settled_by(limits[120:], 30, 50) <= 240, limits


def test_errors_halve_the_limit_at_once() -> None:
    search = Search(limit=20, step=1.2, direction=1, bytes_per_s=1e6, objects_per_s=1.0)
    failing = Window(WINDOW_S, succeeded=10, failed=10, bytes=10 * OBJECT, active=20)
    after, decision = decide(search, failing, FLOOR, CEILING)
    assert (after.limit, decision.previous) == (10, 20)
    assert decision.reason.startswith("errors: 50% succeeded")
    assert after.bytes_per_s is None  # the next window is not compared with this one


def test_a_window_without_enough_work_holds_the_limit() -> None:
    search = Search(limit=16, bytes_per_s=1e6, objects_per_s=1.0)
    idle = Window(WINDOW_S, succeeded=0, failed=0, bytes=0, active=0)
    after, decision = decide(search, idle, FLOOR, CEILING)
    assert (after.limit, decision.reason) == (16, "idle: nothing to move")
    short = Window(WINDOW_S, succeeded=40, failed=0, bytes=40 * OBJECT, active=3)
    after, decision = decide(search, short, FLOOR, CEILING)
    assert (after.limit, decision.reason) == (16, "too few objects queued to judge")


def test_the_limit_stays_within_the_channel_bounds() -> None:
    limits = limits_over([(LinkModel(peak=100), 300)])
    assert max(limits) == CEILING
    search, _ = decide(Search(limit=1, direction=-1), window_at(1, LinkModel(), 5, 0, RNG), 1, 64)
    assert search.limit >= 1
    assert decide(Search(limit=200), window_at(64, LinkModel(), 5, 0, RNG), 2, 8)[1].previous == 8


def test_small_objects_are_judged_by_their_number() -> None:
    search = Search(limit=8, bytes_per_s=0.0, objects_per_s=100.0)
    more = Window(WINDOW_S, succeeded=800, failed=0, bytes=0, active=8)
    after, decision = decide(search, more, FLOOR, CEILING)
    assert decision.reason == "throughput grew +60%"
    assert after.limit == 16


def test_after_a_move_it_waits_one_objects_time_before_measuring() -> None:
    moved = Decision(16, 8, "throughput grew +50%", 8e6, 4.0, 1.0)
    assert settle_s(moved, 5.0) == 2.0  # 8 objects active, 4 ending a second: 2 s each
    assert settle_s(Decision(16, 8, "slow objects", 0, 0.5, None), 5.0) == 5.0  # a window at most
    assert settle_s(Decision(8, 8, "kept", 8e6, 4.0, 1.0), 5.0) == 0.0
