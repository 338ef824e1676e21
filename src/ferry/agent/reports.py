"""Sending results to the server so that no result can hold back the others.

The server refuses a report it cannot read (422) whole. Sent again as it was, such a batch
would be refused again for as long as the agent lives, and every result in it, and behind it,
would be lost while the heartbeats kept their leases alive. A refused batch is therefore sent
again one result at a time; a result refused alone is replaced by a failure of its object that
says so (retried like any transient failure), and one whose failure is refused as well is
dropped, its lease left to expire so that the object is leased again.

A refused ``Results`` body (protocol 2) is split the same way: each task alone, each chunk's
report alone, and a chunk report refused alone is sent again one object at a time, each
refused object replaced by its failure, then its end (``ended``, ``rest``) alone."""

from __future__ import annotations

import logging
from typing import Protocol

from ferry.api.protocol import ChunkReport, ReportedState, ReportReply, Results, TaskReport
from ferry.domain.transfers import clip_error
from ferry.errors import ApiError

log = logging.getLogger("ferry.agent")

UNREADABLE = 422


class Reports(Protocol):
    async def report(self, results: list[TaskReport]) -> ReportReply: ...


class AllResults(Protocol):
    async def results(self, body: Results) -> ReportReply: ...


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


async def send_results(session: AllResults, body: Results) -> None:
    """Report ``body`` to a server of protocol 2; network and server errors other than a
    refusal propagate (the caller sends it again later: reports are idempotent)."""
    if await _refused(session, body) is None:
        return
    for task in body.tasks:
        await _send_alone(_TasksAsResults(session), task)
    for chunk in body.chunks:
        if await _refused(session, Results(chunks=[chunk])) is not None:
            await _send_by_object(session, chunk)


async def _refused(session: AllResults, body: Results) -> str | None:
    """Why the server refused ``body`` as unreadable; None when it took it."""
    try:
        await session.results(body)
    except ApiError as exc:
        if exc.status != UNREADABLE:
            raise
        return str(exc)
    return None


async def _send_by_object(session: AllResults, chunk: ChunkReport) -> None:
    for row in chunk.results:
        alone = ChunkReport(task=chunk.task, lease=chunk.lease, results=[row])
        why = await _refused(session, Results(chunks=[alone]))
        if why is None:
            continue
        log.error("task %s, object at %s: its result was refused (%s)", chunk.task, row[0], why)
        error = clip_error(f"the server refused this object's result from the agent: {why}")
        alone.results = [(row[0], ReportedState.FAILED, 0, None, "internal", error, True)]
        if await _refused(session, Results(chunks=[alone])) is not None:
            log.error("task %s, object at %s: its failure was refused too", chunk.task, row[0])
    if chunk.ended:
        end = ChunkReport(task=chunk.task, lease=chunk.lease, ended=True, rest=chunk.rest)
        if (why := await _refused(session, Results(chunks=[end]))) is not None:
            log.error("task %s: its end was refused (%s); its lease will expire", chunk.task, why)


class _TasksAsResults:
    """A protocol-2 session seen as one that takes a list of task reports."""

    def __init__(self, session: AllResults) -> None:
        self._session = session

    async def report(self, results: list[TaskReport]) -> ReportReply:
        return await self._session.results(Results(tasks=results))
