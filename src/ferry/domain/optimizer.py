"""The link optimizer's control law (FTS3's optimizer, made faster): from what a channel moved
over one measuring window, the number of objects it may move at once in the next.

A multiplicative hill climb on the channel's throughput, with a step that adapts:

- It starts at the channel's ``min_active`` and moves by a ratio (``step``, first 2: the
  limit doubles, as TCP's slow start does) in one direction while each window moves more
  than the one before it, by bytes/s or by objects/s (small objects are counted by number).
- When a move made the throughput fall, it turns back and shrinks the step to its square
  root, so that it closes in on the peak: 2, 1.41, 1.19, 1.09 … down to one object.
- When more objects moved no faster, it turns back too: fewer objects doing the same is
  better. When fewer objects moved no slower, it keeps going down.
- When a move up gained less than a quarter of what it added, the peak is near: the step
  shrinks to its square root without turning (a doubling that gained 12% will not double
  again).
- After ``SUSTAINED`` windows in a row that each moved more, the step doubles its excess
  again (1.06 → 1.12 → 1.25 …): the peak has moved away, and one object per window would be
  slow to follow it. Around a peak, which it crosses back and forth, that never happens.
- Once the step is fine (below ``FINE_STEP``) each window is twice as long: the gains it
  then looks for are as small as the noise of counting the objects that end in a short one.
- When too many attempts fail (success below ``MIN_SUCCESS``), the limit halves at once and
  the search starts again from there, as AIMD's multiplicative decrease.
- A window with no work, or with fewer objects active than half the limit, says nothing of
  the limit: it is held, and the next window is not compared with that one.

Why not FTS3's ±1 per minute: from 2 to a peak of 12 it needs ten minutes, and a link that
changes is followed as slowly; a doubling search gets there in a handful of windows. Why not
plain AIMD (+1, ×½): it reacts to errors only, and a link that slows down without failing
(a busy disk, a congested path) would never be backed off. The search is on the throughput.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

FIRST_STEP = 2.0  # the first move doubles the limit
MAX_STEP = 2.0
MIN_STEP = 1.0625  # below this the move is one object anyway, up to 16
NOISE = 0.05  # a change in throughput smaller than this is no change
MIN_SUCCESS = 0.9  # fewer attempts succeeding than this: halve the limit
MIN_ATTEMPTS = 5  # and only judge the success rate over at least so many
SUSTAINED = 4  # windows in a row that moved more before the step grows again
FINE_STEP = 1.3  # a step below this looks for gains as small as the noise of one window


@dataclass(frozen=True, slots=True)
class Window:
    """What a channel did over one measuring window."""

    seconds: float
    succeeded: int  # objects that ended well
    failed: int  # attempts that failed (to be retried or for good)
    bytes: int  # moved by the objects that ended well
    active: int  # objects active at the window's end

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def objects_per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0

    @property
    def success_rate(self) -> float | None:
        """The share of attempts that succeeded; None over too few to judge."""
        attempts = self.succeeded + self.failed
        return self.succeeded / attempts if attempts >= MIN_ATTEMPTS else None


@dataclass(frozen=True, slots=True)
class Search:
    """Where the search of one channel stands: the limit in force, the next move's ratio and
    direction, and the throughput of the last window to compare the next one with."""

    limit: int
    step: float = FIRST_STEP
    direction: int = 1  # +1: up, -1: down
    streak: int = 0  # windows in a row that moved more
    bytes_per_s: float | None = None  # None: no window to compare with
    objects_per_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Search:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Decision:
    """One window's verdict: the limit from ``previous`` to ``limit``, and why."""

    limit: int
    previous: int
    reason: str
    bytes_per_s: float
    objects_per_s: float
    success_rate: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """The window being measured on a channel: opened at ``at`` (seconds since the epoch)
    when the channel's links had moved ``sums`` (succeeded, failed, bytes); with ``sums``
    None it opens at ``at`` (after a move, once the objects started before had time to
    end). Kept with the channel, so that whichever server runs the optimizer next goes on
    with the same window."""

    at: float
    sums: tuple[int, int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "sums": list(self.sums) if self.sums is not None else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenWindow:
        sums = data.get("sums")
        return cls(float(data["at"]), tuple(sums) if sums is not None else None)


def window_for(search: Search, window_s: float) -> float:
    """How long to measure the next window: twice ``window_s`` once the step is fine, since
    the gain it looks for is then as small as one short window's noise."""
    return window_s * 2 if search.step < FINE_STEP else window_s


def settle_s(decision: Decision, window_s: float) -> float:
    """How long to wait after a move before the next window opens: the time one object
    spends in the channel (Little's law: the objects active over the objects done a second),
    at most one window. Objects are counted as they end: one that took seconds would
    otherwise count its time under the old limit in the new limit's window."""
    if decision.limit == decision.previous or decision.objects_per_s <= 0:
        return 0.0
    return min(window_s, decision.previous / decision.objects_per_s)


def start(min_active: int) -> Search:
    """The search of a channel just set to optimize: from its floor, upwards."""
    return Search(limit=min_active)


def decide(search: Search, window: Window, floor: int, ceiling: int) -> tuple[Search, Decision]:
    """The search after ``window`` and the decision it made, the limit kept within
    ``floor`` … ``ceiling``."""
    search = replace(search, limit=min(ceiling, max(floor, search.limit)))
    success = window.success_rate
    if success is not None and success < MIN_SUCCESS:
        after = Search(limit=max(floor, search.limit // 2), step=search.step, direction=1)
        return after, _decision(after, search, window, f"errors: {success:.0%} succeeded")
    if window.succeeded + window.failed == 0 and window.active == 0:
        after = replace(search, bytes_per_s=None, objects_per_s=None, streak=0)
        return after, _decision(after, search, window, "idle: nothing to move")
    if window.active * 2 < search.limit:
        after = replace(search, bytes_per_s=None, objects_per_s=None, streak=0)
        return after, _decision(after, search, window, "too few objects queued to judge")
    turned, reason = _judge(search, window)
    after = _move(turned, floor, ceiling)
    after = replace(after, bytes_per_s=window.bytes_per_s, objects_per_s=window.objects_per_s)
    return after, _decision(after, search, window, reason)


def _judge(search: Search, window: Window) -> tuple[Search, str]:
    """The search turned (or not) by how this window compares with the last, and why."""
    gain = _gain(search, window)
    if gain is None:
        return search, "first window: probing"
    if gain > NOISE:
        streak = search.streak + 1
        step = search.step
        if streak >= SUSTAINED:
            step = min(MAX_STEP, 1 + 2 * (step - 1))
        elif search.direction > 0 and gain < (step - 1) / 4:
            step = max(MIN_STEP, math.sqrt(step))  # diminishing returns: the peak is near
        return replace(search, streak=streak, step=step), f"throughput grew {gain:+.0%}"
    if gain < -NOISE:
        return _turn(search), f"throughput fell {gain:+.0%}: turning back"
    if search.direction > 0:
        return _turn(search), f"throughput flat {gain:+.0%} with more: fewer"
    return replace(search, streak=0), f"throughput flat {gain:+.0%} with fewer: fewer still"


def _gain(search: Search, window: Window) -> float | None:
    """The larger relative change of bytes/s and objects/s since the last window; None with
    nothing to compare (small objects weigh by number, large ones by bytes)."""
    gains = [
        now / before - 1
        for now, before in (
            (window.bytes_per_s, search.bytes_per_s),
            (window.objects_per_s, search.objects_per_s),
        )
        if before is not None and before > 0
    ]
    if not gains:
        return None
    return max(gains)


def _turn(search: Search) -> Search:
    step = max(MIN_STEP, math.sqrt(search.step))
    return replace(search, direction=-search.direction, step=step, streak=0)


def _move(search: Search, floor: int, ceiling: int) -> Search:
    """The search with its limit moved one step in its direction (at least one object),
    turned around when a bound stops it."""
    if search.direction > 0:
        target = max(search.limit + 1, round(search.limit * search.step))
    else:
        target = min(search.limit - 1, round(search.limit / search.step))
    limit = min(ceiling, max(floor, target))
    if limit == search.limit:
        return replace(search, direction=-search.direction)
    return replace(search, limit=limit)


def _decision(after: Search, before: Search, window: Window, reason: str) -> Decision:
    return Decision(
        limit=after.limit,
        previous=before.limit,
        reason=reason,
        bytes_per_s=round(window.bytes_per_s, 1),
        objects_per_s=round(window.objects_per_s, 3),
        success_rate=window.success_rate,
    )
