"""Named timers: one-shot and periodic, reset and cancel; a failing handler keeps its timer's
schedule and a slow one holds nothing else up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from ferry.daemon.timers import Timers


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def timers():
    timers = Timers()
    yield timers
    await timers.close()


async def test_a_one_shot_timer_fires_once_and_is_gone(timers: Timers) -> None:
    calls: list[float] = []

    async def handler() -> None:
        calls.append(time.monotonic())

    started = time.monotonic()
    timers.once("soon", 0.05, handler)
    await until(lambda: "soon" not in timers.names)
    await asyncio.sleep(0.1)  # nothing more may come: there is no state to wait for

    assert len(calls) == 1
    assert calls[0] - started >= 0.05


async def test_a_periodic_timer_keeps_firing_until_canceled(timers: Timers) -> None:
    calls: list[int] = []

    async def handler() -> None:
        calls.append(1)

    timers.every("tick", 0.01, handler)
    await until(lambda: len(calls) >= 5)
    assert timers.cancel("tick") is True
    seen = len(calls)
    await asyncio.sleep(0.05)

    assert len(calls) in (seen, seen + 1)  # a firing already under way may land
    assert timers.cancel("tick") is False


async def test_reset_starts_the_countdown_again(timers: Timers) -> None:
    fired = asyncio.Event()

    async def handler() -> None:
        fired.set()

    started = time.monotonic()
    timers.once("deadline", 0.2, handler)
    await asyncio.sleep(0.1)
    timers.reset("deadline")  # 0.2 s from now, not from the start
    await asyncio.wait_for(fired.wait(), 2)

    assert time.monotonic() - started >= 0.3


async def test_a_failing_handler_is_logged_and_its_timer_goes_on(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def handler() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="ferry.daemon"):
        timers.every("flaky", 0.01, handler)
        await until(lambda: len(calls) >= 3)

    assert "flaky" in timers.names
    assert any("timer flaky: its handler failed" in r.getMessage() for r in caplog.records)


async def test_a_slow_handler_holds_up_neither_the_loop_nor_other_timers(timers: Timers) -> None:
    slow_calls: list[int] = []
    quick_calls: list[int] = []
    release = asyncio.Event()

    async def slow() -> None:
        slow_calls.append(1)
        await release.wait()

    async def quick() -> None:
        quick_calls.append(1)

    timers.every("slow", 0.01, slow)
    timers.every("quick", 0.01, quick)
    await until(lambda: len(quick_calls) >= 10)

    assert len(slow_calls) == 1  # its beats pass while the first run is still going
    assert timers.fired("slow") == 1
    release.set()
    await until(lambda: len(slow_calls) >= 2)


async def test_a_periodic_timer_needs_a_positive_interval(timers: Timers) -> None:
    async def handler() -> None:
        return None

    with pytest.raises(ValueError, match="positive"):
        timers.every("never", 0, handler)
