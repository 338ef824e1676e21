"""A task whose source has replicas: the agent walks its places within one attempt.

The places are tried in order, starting at the one after where the previous attempt started
(attempt 1 at the source, attempt 2 at the first replica, and so on, wrapping), so that a
retry after a transient failure does not always queue behind the same slow place. The first
copy that succeeds, is skipped or is stopped ends the walk; a failure on the destination's
side ends it too (every place writes to the same destination). Only when every place failed
does the attempt fail, retryable if any place's failure was; each place's error is kept in
the report's error, and a DONE object names the place it was read from and the errors of
those that failed before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ferry.agent.held import STOPPED_BY_AGENT, HeldTask
from ferry.api.protocol import ReportedState
from ferry.domain.locations import Location
from ferry.domain.transfers import clip_error

if TYPE_CHECKING:
    from ferry.agent.copies import Attempt


def places_in_turn(task: HeldTask) -> list[Location]:
    """The task's places in the order this attempt tries them."""
    places = [task.source, *task.replicas]
    start = (max(task.leased.attempt, 1) - 1) % len(places)
    return places[start:] + places[:start]


def walk_replicas(task: HeldTask, copy_from: Callable[[Location], Attempt]) -> Attempt:
    """Copy ``task``'s object from the first of its places that can give it."""
    places = places_in_turn(task)
    failed: list[Attempt] = []
    for place in places:
        ended = copy_from(place)
        if ended.state is not ReportedState.FAILED:
            return _read_from(place, ended, failed)
        if task.canceled:  # stopped between places: the others are not tried
            return _stopped(task, ended)
        failed.append(ended)
        if ended.on_destination:
            break
    return _every_place_failed(task, failed, len(places))


def _stopped(task: HeldTask, ended: Attempt) -> Attempt:
    """A walk cut short by a cancel (CANCELED) or by the agent's own stop (RELEASED: the
    object still has to move, and this attempt does not use up a retry)."""
    if task.shutting_down:
        ended.state, ended.error = ReportedState.RELEASED, STOPPED_BY_AGENT
    else:
        ended.state, ended.error = ReportedState.CANCELED, "canceled while trying its replicas"
        ended.error_class = "canceled"
    ended.retryable = False
    return ended


def _read_from(place: Location, ended: Attempt, failed: list[Attempt]) -> Attempt:
    ended.replica = str(place)
    if failed and ended.state in (ReportedState.DONE, ReportedState.SKIPPED):
        before = f"read from {place} after: {_errors(failed)}"
        ended.error = clip_error(f"{ended.error}; {before}" if ended.error else before)
    return ended


def _every_place_failed(task: HeldTask, failed: list[Attempt], places: int) -> Attempt:
    retried = [a for a in failed if a.retryable]
    first = retried[0] if retried else failed[0]
    untried = places - len(failed)
    why = f" ({untried} not tried: the destination failed)" if untried else ""
    error = clip_error(f"every replica failed{why}: {_errors(failed)}")
    if task.leased.skip_source_errors and not untried and all(a.source_error for a in failed):
        first.state, first.error, first.error_class = ReportedState.SKIPPED, error, None
        return first
    first.error, first.retryable = error, bool(retried)
    return first


def _errors(failed: list[Attempt]) -> str:
    return "; ".join(a.error or a.error_class or "failed" for a in failed)
