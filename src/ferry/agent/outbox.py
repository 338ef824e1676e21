"""What an agent has to report, kept until the server accepts it: the reports of single
tasks, and the rows of its chunks as their objects end (a chunk that runs longer than a
report interval is reported in parts, its last report ``ended``). Also the agent's counts of
what ended, for its state dump.

Used from the event loop only (a chunk's rows are appended by its copy thread under the
chunk's own lock)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry.agent.held import HeldChunk, HeldTask
from ferry.agent.reports import AllResults, Reports, send_reports, send_results
from ferry.api.protocol import PROTOCOL, ChunkReport, ReportedState, Results, TaskReport
from ferry.daemon.logs import REDACTOR
from ferry.domain.transfers import clip_error

REPORT_BATCH = 500  # objects a body reports at most
REPORT_EVERY_S = 0.2  # the report interval: also the least time between a chunk's partial reports
RECENT_ERRORS = 10


@dataclass(slots=True)
class Body:
    """One report's content, and the chunks its chunk reports are of."""

    tasks: list[TaskReport]
    chunks: list[tuple[HeldChunk, ChunkReport]] = field(default_factory=list)


class Outbox:
    def __init__(self) -> None:
        self.tasks: list[TaskReport] = []
        self.chunks: dict[int, HeldChunk] = {}  # held until their last report is accepted
        self.stats: Counter[str] = Counter()
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)

    def __bool__(self) -> bool:
        """Whether a task's report waits to be sent (a chunk's rows are not counted)."""
        return bool(self.tasks)

    def full(self) -> bool:
        return len(self.tasks) >= REPORT_BATCH

    def add(self, task: HeldTask, report: TaskReport) -> None:
        """Keep ``report``, of ``task``, until a report holding it is accepted."""
        if report.error:  # a path of thousands of characters makes a message as long
            report.error = clip_error(REDACTOR.redact(report.error))
        moved = report.bytes - report.resumed  # what a resumed copy kept did not move now
        self._count(task.id, str(task.source), report.state, moved, report.error)
        self.tasks.append(report)

    def hold(self, chunk: HeldChunk) -> None:
        """Report ``chunk``'s rows as they come, until its last report is accepted."""
        self.chunks[chunk.id] = chunk

    def next_body(self, protocol: int, now: float) -> Body | None:
        """The next report to send, at most ``REPORT_BATCH`` objects; None: nothing to say.
        Chunks are reported only to a server of ``PROTOCOL`` (an older one leases none); a
        chunk still copying, at most once a report interval (``now``: ``time.monotonic()``),
        so that a report loop kept busy by one chunk's rows does not post them one by one."""
        body = Body(self.tasks[:REPORT_BATCH])
        most = REPORT_BATCH - len(body.tasks)
        for chunk in self.chunks.values() if protocol >= PROTOCOL else ():
            report = chunk.report(most, now)
            if report is not None:
                body.chunks.append((chunk, report))
                most -= len(report.results)
        return body if body.tasks or body.chunks else None

    async def send(self, session: Any, body: Body) -> bool:
        """Send ``body`` by ``session``'s protocol; errors as ``send_results`` raises them."""
        if session.protocol >= PROTOCOL:
            all_results: AllResults = session
            chunks = [report for _, report in body.chunks]
            await send_results(all_results, Results(tasks=body.tasks, chunks=chunks))
        else:
            reports: Reports = session
            await send_reports(reports, body.tasks)
        return True

    def accepted(self, body: Body, now: float) -> list[int]:
        """Forget what ``body`` reported, now accepted (``now``: ``time.monotonic()``); return
        the ids of the tasks and chunks whose last report it was."""
        del self.tasks[: len(body.tasks)]
        ended = [report.task for report in body.tasks]
        for chunk, report in body.chunks:
            chunk.accepted(report)
            chunk.partial_at = now + REPORT_EVERY_S
            for offset, state, moved, _checksum, _class, error, _retryable in report.results:
                failed = state is ReportedState.FAILED
                source = str(chunk.source.child(chunk.objects[offset][0])) if failed else ""
                self._count(chunk.id, source, state, moved, error)
            if report.ended:
                del self.chunks[chunk.id]
                ended.append(chunk.id)
        return ended

    def _count(
        self, task: int, source: str, state: ReportedState, moved: int, error: str | None
    ) -> None:
        self.stats[state] += 1
        self.stats["bytes"] += moved
        if state is ReportedState.FAILED:
            at = datetime.now(UTC).isoformat(timespec="seconds")
            self.recent_errors.append({"task": task, "source": source, "error": error, "at": at})
