"""The rate at which processes write, measured outside Ferry: the bytes the kernel counts as
written by them (``wchar`` in /proc/PID/io; a local copy may write to an unnamed file, so there
is no file to watch), sampled every 50 ms; and times of day for timetables set a few seconds
ahead."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

Sample = tuple[float, int]


def time_of_day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M:%S")


def written(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                total += int(line.split()[1])
    return total


def bytes_written(pids: list[int], done: Callable[[], bool], until: float) -> list[Sample]:
    """(time, bytes the agents wrote since the first sample) until ``done()`` or ``until``."""
    start = written(pids)
    samples: list[Sample] = []
    checked = 0.0
    while time.time() < until:
        now = time.time()
        samples.append((now, written(pids) - start))
        if now - checked > 0.5:
            checked = now
            if done():
                break
        time.sleep(0.05)
    return samples


def rate_between(samples: list[Sample], start: float, end: float) -> float:
    """Bytes per second from the last sample at or before ``start`` to the first at or after
    ``end`` (a loaded machine samples unevenly)."""
    before = [sample for sample in samples if sample[0] <= start] or samples[:1]
    after = [sample for sample in samples if sample[0] >= end] or samples[-1:]
    (t0, n0), (t1, n1) = before[-1], after[0]
    assert t1 - t0 > 0.5, f"no samples around {start}…{end}"
    return (n1 - n0) / (t1 - t0)
