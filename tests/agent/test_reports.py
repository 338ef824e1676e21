"""Reports that the server refuses cannot hold back the others (send_reports)."""

from __future__ import annotations

import pytest

from ferry.agent.reports import send_reports
from ferry.errors import ApiError
from ferry.protocol import ReportedState, ReportReply, TaskReport


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
