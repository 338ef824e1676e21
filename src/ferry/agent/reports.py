"""Sending results to the server so that no result can hold back the others.

The server refuses a report it cannot read (422) whole. Sent again as it was, such a batch
would be refused again for as long as the agent lives, and every result in it, and behind it,
would be lost while the heartbeats kept their leases alive. A refused batch is therefore sent
again one result at a time; a result refused alone is replaced by a failure of its object that
says so (retried like any transient failure), and one whose failure is refused as well is
dropped, its lease left to expire so that the object is leased again."""

from __future__ import annotations

import logging
from typing import Protocol

from ferry.domain.transfers import clip_error
from ferry.errors import ApiError
from ferry.protocol import ReportedState, ReportReply, TaskReport

log = logging.getLogger("ferry.agent")

UNREADABLE = 422


class Reports(Protocol):
    async def report(self, results: list[TaskReport]) -> ReportReply: ...


async def send_reports(session: Reports, batch: list[TaskReport]) -> None:
    """Report ``batch``; network and server errors other than a refusal propagate (the caller
    sends it again later: reports are idempotent)."""
    try:
        await session.report(batch)
    except ApiError as exc:
        if exc.status != UNREADABLE:
            raise
        for result in batch:
            await _send_alone(session, result)


async def _send_alone(session: Reports, result: TaskReport) -> None:
    try:
        await session.report([result])
        return
    except ApiError as exc:
        if exc.status != UNREADABLE:
            raise
        why = str(exc)
    log.error("task %s: the server refused its result (%s); reported as failed", result.task, why)
    failure = TaskReport(
        task=result.task,
        lease=result.lease,
        state=ReportedState.FAILED,
        error_class="internal",
        retryable=True,
        error=clip_error(f"the server refused this object's result from the agent: {why}"),
    )
    try:
        await session.report([failure])
    except ApiError as exc:
        if exc.status != UNREADABLE:
            raise
        log.error(
            "task %s: its failure was refused too (%s); its lease will expire", result.task, exc
        )
