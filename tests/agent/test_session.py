"""The agent's HTTP session against a scripted server: the errors it raises for answers that
are not what it asked for."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from ferry.agent.session import ServerSession
from ferry.errors import ApiError


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
