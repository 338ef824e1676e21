"""Reports that the server refuses cannot hold back the others (send_reports)."""

from __future__ import annotations

import pytest

from ferry.agent.reports import send_reports, send_results
from ferry.api.protocol import ChunkReport, ReportedState, ReportReply, Results, TaskReport
from ferry.errors import ApiError


class RefusingServer:
    """Takes a report unless a result in it is one it cannot read, as the API does (422 for
    the whole body); ``refuse_failures`` refuses the agent's failure for such a result too."""

    def __init__(self, unreadable: set[int], *, refuse_failures: bool = False) -> None:
        self.unreadable = unreadable
        self.refuse_failures = refuse_failures
        self.taken: dict[int, TaskReport] = {}
        self.calls = 0

    async def report(self, results: list[TaskReport]) -> ReportReply:
        self.calls += 1
        for result in results:
            failure = result.state is ReportedState.FAILED and result.error_class == "internal"
            if result.task in self.unreadable and (self.refuse_failures or not failure):
                raise ApiError(422, "invalid request", f"body.0.bytes: task {result.task}")
        self.taken |= {result.task: result for result in results}
        return ReportReply(accepted=len(results), ignored=0)


def results(*tasks: int) -> list[TaskReport]:
    return [TaskReport(task=n, lease=f"l{n}", state=ReportedState.DONE, bytes=1) for n in tasks]


async def test_a_batch_the_server_cannot_read_is_sent_again_one_result_at_a_time() -> None:
    server = RefusingServer(unreadable={2})
    await send_reports(server, results(1, 2, 3))
    assert server.taken[1].state is server.taken[3].state is ReportedState.DONE
    refused = server.taken[2]
    assert refused.state is ReportedState.FAILED
    assert refused.lease == "l2"
    assert refused.retryable is True
    assert "the server refused this object's result" in (refused.error or "")
    assert "body.0.bytes" in (refused.error or "")


async def test_a_result_whose_failure_is_refused_too_is_dropped_not_resent() -> None:
    server = RefusingServer(unreadable={2}, refuse_failures=True)
    await send_reports(server, results(1, 2))
    assert sorted(server.taken) == [1]
    assert server.calls == 4  # the batch; 1 alone; 2 alone; 2's failure, then no more


async def test_a_server_error_is_left_to_the_caller_to_send_again() -> None:
    class Unavailable:
        async def report(self, results: list[TaskReport]) -> ReportReply:
            raise ApiError(503, "unavailable", "the server is shutting down")

    with pytest.raises(ApiError) as raised:
        await send_reports(Unavailable(), results(1))
    assert raised.value.status == 503


class RefusingResults:
    """Takes a ``Results`` body unless it holds an object it cannot read (offset 2 of chunk 8,
    task 2), as the API does: 422 for the whole body."""

    def __init__(self) -> None:
        self.taken: list[Results] = []

    async def results(self, body: Results) -> ReportReply:
        rows = [row for chunk in body.chunks for row in chunk.results]
        if any(row[0] == 2 and row[5] != FAILURE for row in rows) or any(
            task.task == 2 and task.error_class != "internal" for task in body.tasks
        ):
            raise ApiError(422, "invalid request", "body.chunks.0.results.2: unreadable")
        self.taken.append(body)
        return ReportReply(accepted=1, ignored=0)


FAILURE = (
    "the server refused this object's result from the agent: body.chunks.0.results.2: unreadable"
)


async def test_a_refused_chunk_report_is_sent_again_one_object_at_a_time() -> None:
    server = RefusingResults()
    rows = [(n, ReportedState.DONE, 1, None, None, None, False) for n in range(4)]
    chunk = ChunkReport(task=8, lease="l8", results=rows, ended=True, rest=ReportedState.CANCELED)
    await send_results(server, Results(tasks=results(1, 2), chunks=[chunk]))

    tasks = {t.task: t.state for body in server.taken for t in body.tasks}
    assert tasks == {1: ReportedState.DONE, 2: ReportedState.FAILED}
    reports = [c for body in server.taken for c in body.chunks]
    taken = {row[0]: row[1] for report in reports for row in report.results}
    assert taken == {0: "DONE", 1: "DONE", 2: "FAILED", 3: "DONE"}
    assert [(r.ended, r.rest) for r in reports][-1] == (True, ReportedState.CANCELED)
    assert not any(r.ended for r in reports[:-1])
