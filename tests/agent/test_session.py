"""The agent's HTTP session against a scripted server: the records it sends, the records it
reads back, and the errors it raises for answers that are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ferry.agent.session import ServerSession
from ferry.api.protocol import PROTOCOL, ChunkReport, ReportedState, Results, TaskReport
from ferry.domain.options import Checksum
from ferry.errors import ApiError

REGISTERED = {"id": "ag1", "name": "a1", "token": "tok", "heartbeat_s": 0.5, "lease_ttl_s": 9}
LEASED = {
    "id": 7,
    "lease": "l7",
    "transfer": "t1",
    "run": 1,
    "source": "src:a",
    "destination": "dst:a",
    "size": 1,
    "attempt": 1,
    "checksum": "sha256",
    "overwrite": "never",
}


class ScriptedServer:
    """Answers each path with the next of its scripted (status, body) pairs; keeps what was
    sent, as JSON."""

    def __init__(self, answers: dict[str, list[tuple[int, bytes]]]) -> None:
        self.answers = answers
        self.sent: dict[str, Any] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        self.sent[path] = orjson.loads(request.content) if request.content else None
        status, body = self.answers[path].pop(0)
        return httpx.Response(status, content=body)


def session_with(server: ScriptedServer) -> ServerSession:
    transport = httpx.MockTransport(server)
    return ServerSession(
        "http://ferry", name="a1", secret="s" * 16, token=None, transport=transport
    )


async def test_each_call_sends_its_record_and_reads_the_reply_into_one() -> None:
    server = ScriptedServer(
        {
            "/agents/register": [(200, orjson.dumps(REGISTERED))],
            "/agents/ag1/lease": [
                (200, orjson.dumps({"tasks": [LEASED], "storages": {}, "scopes": {"default": 2}}))
            ],
            "/agents/ag1/report": [(200, b'{"accepted": 1, "ignored": 0}')],
            "/agents/ag1/heartbeat": [(200, b'{"cancel": [7], "bandwidth": {"7": 512}}')],
            "/agents/ag1/leave": [(200, b'{"released": 2}')],
        }
    )
    session = session_with(server)
    try:
        await session.register({"max_active": 2})
        lease = await session.lease(10, 0.0)
        report = await session.report([TaskReport(task=7, lease="l7", state=ReportedState.DONE)])
        beat = await session.heartbeat([(7, 100)], {"pid": 1})
        released = await session.leave()
    finally:
        await session.close()

    assert (session.agent_id, session.heartbeat_s, session.lease_ttl_s) == ("ag1", 0.5, 9.0)
    assert server.sent["/agents/register"]["secret"] == "s" * 16
    assert server.sent["/agents/ag1/lease"] == {"max_tasks": 10, "wait_s": 0.0}
    (task,) = lease.tasks
    assert (task.id, task.checksum, lease.scopes) == (7, Checksum.SHA256, {"default": 2})
    (sent,) = server.sent["/agents/ag1/report"]
    assert (sent["task"], sent["state"], sent["started"]) == (7, "DONE", True)
    assert (report.accepted, report.ignored) == (1, 0)
    assert server.sent["/agents/ag1/heartbeat"] == {"active": [[7, 100]], "state": {"pid": 1}}
    assert (beat.cancel, beat.bandwidth) == ([7], {7: 512})
    assert released == 2


async def test_an_older_server_takes_reports_at_report_a_newer_one_at_results() -> None:
    """The agent says its protocol at registration; it posts to /results only when the
    server's reply says it speaks protocol 2 (an older server's reply says nothing)."""
    newer = {**REGISTERED, "protocol": PROTOCOL}
    server = ScriptedServer(
        {
            "/agents/register": [(200, orjson.dumps(REGISTERED)), (200, orjson.dumps(newer))],
            "/agents/ag1/results": [(200, b'{"accepted": 2, "ignored": 0}')],
        }
    )
    session = session_with(server)
    try:
        await session.register({"max_active": 2})
        older_protocol = session.protocol
        await session.register({"max_active": 2})
        rows = [(0, ReportedState.DONE, 4, "adler32:01", None, None, False)]
        await session.results(
            Results(
                tasks=[TaskReport(task=7, lease="l7", state=ReportedState.DONE)],
                chunks=[ChunkReport(task=8, lease="l8", results=rows, ended=True)],
            )
        )
    finally:
        await session.close()

    assert server.sent["/agents/register"]["capabilities"] == {"max_active": 2, "protocol": 2}
    assert (older_protocol, session.protocol) == (1, 2)
    sent = server.sent["/agents/ag1/results"]
    assert sent["tasks"][0]["task"] == 7
    assert sent["chunks"] == [
        {
            "task": 8,
            "lease": "l8",
            "results": [[0, "DONE", 4, "adler32:01", None, None, False]],
            "ended": True,
            "rest": None,
        }
    ]


@pytest.mark.parametrize(
    ("body", "title", "detail"),
    [
        (
            b'{"title": "Invalid request", "detail": "body.0.state: not a state"}',
            "Invalid request",
            "body.0.state: not a state",
        ),
        (b'["a proxy", "answered"]', "Service Unavailable", '["a proxy", "answered"]'),
        (b'"busy"', "Service Unavailable", '"busy"'),
        (b"<html>busy</html>", "Service Unavailable", "<html>busy</html>"),
    ],
)
async def test_an_error_answer_is_an_api_error_whatever_its_body(
    body: bytes, title: str, detail: str
) -> None:
    server = ScriptedServer({"/agents/register": [(503, body)]})
    session = session_with(server)
    try:
        with pytest.raises(ApiError) as raised:
            await session.register({})
    finally:
        await session.close()
    assert (raised.value.status, raised.value.title, raised.value.detail) == (503, title, detail)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"<html>signed out</html>", "body: Invalid JSON"),
        (orjson.dumps({"tasks": [{"id": 7}], "storages": {}}), "tasks.0.lease: Field required"),
    ],
)
async def test_a_success_answer_that_is_no_reply_is_an_api_error(body: bytes, where: str) -> None:
    """A proxy's page sent with 200, or a reply of another protocol: the agent's loops wait and
    ask again on an ``ApiError``; anything else would have ended the loop."""
    server = ScriptedServer(
        {"/agents/register": [(200, orjson.dumps(REGISTERED))], "/agents/ag1/lease": [(200, body)]}
    )
    session = session_with(server)
    try:
        await session.register({})
        with pytest.raises(ApiError) as raised:
            await session.lease(10, 0.1)
    finally:
        await session.close()
    assert raised.value.status == 502
    assert raised.value.detail.startswith(
        "the server's answer to /agents/ag1/lease is not LeaseReply"
    )
    assert where in raised.value.detail


def refusing(hosts: set[str], asked: list[str], then: ScriptedServer) -> httpx.MockTransport:
    """A network where ``hosts`` refuse connections and any other host is ``then``."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host in hosts:
            raise httpx.ConnectError("connection refused", request=request)
        return then(request)

    return httpx.MockTransport(answer)


async def test_a_server_that_does_not_answer_is_left_for_the_next_which_is_kept() -> None:
    """Servers a and b share a database; a refuses connections: the registration goes to b at
    once, and b is kept: the heartbeat after it does not try a first."""
    asked: list[str] = []
    b = ScriptedServer(
        {
            "/agents/register": [(200, orjson.dumps(REGISTERED))],
            "/agents/ag1/heartbeat": [(200, b'{"cancel": []}')],
        }
    )
    transport = refusing({"a"}, asked, b)
    servers = "http://a:1, http://b:2/"
    session = ServerSession(servers, name="a1", secret="s", token=None, transport=transport)
    try:
        await session.register({})
        await session.heartbeat([], {})
    finally:
        await session.close()

    assert (session.servers, session.server) == (["http://a:1", "http://b:2"], "http://b:2")
    assert asked == ["a", "b", "b"]


async def test_when_no_server_answers_the_last_ones_error_is_raised_after_each_was_tried() -> None:
    asked: list[str] = []
    transport = refusing({"a", "b"}, asked, ScriptedServer({}))
    servers = ["http://a:1", "http://b:2"]
    session = ServerSession(servers, name="a1", secret=None, token="t", transport=transport)
    try:
        with pytest.raises(httpx.ConnectError):
            await session.heartbeat([], {})
    finally:
        await session.close()
    assert asked == ["a", "b"]


async def test_a_spent_secret_left_in_the_environment_gives_way_to_the_kept_token(
    tmp_path: Path,
) -> None:
    """An agent restarted with the one-time secret it registered with still in its
    environment: refused (already used), it registers with the token that registration kept."""
    kept = tmp_path / "agent-a1.token"
    kept.write_text("kept-token\n")
    asked: list[tuple[str | None, str | None]] = []
    refused = b'{"title": "Unauthorized", "detail": "secret already used"}'

    def answer(request: httpx.Request) -> httpx.Response:
        sent = orjson.loads(request.content)
        asked.append((sent.get("secret"), request.headers.get("Authorization")))
        if sent.get("secret"):
            return httpx.Response(401, content=refused)
        return httpx.Response(200, content=orjson.dumps({**REGISTERED, "token": "new-token"}))

    session = ServerSession(
        "http://ferry",
        name="a1",
        secret="s" * 16,
        token=None,
        transport=httpx.MockTransport(answer),
        keep_token=kept,
    )
    try:
        await session.register({})
    finally:
        await session.close()

    assert asked == [("s" * 16, None), (None, "Bearer kept-token")]
    assert kept.read_text().strip() == "new-token"
