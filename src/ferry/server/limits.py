"""What a request may hold, checked before anything reads it (authentication included).

A body has a cap: an oversized one is answered 413 without being held in memory. Objects pushed
to ``PUT /api/v1/transfers/{id}/data/…`` are streamed to their storage, never held: they are
exempt. A path or query holds no NUL character (400): PostgreSQL's text cannot store one, and
no name, id or filter of Ferry's has one."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferry.server.problems import problem

MAX_BODY_BYTES = 16 * 1024 * 1024
NO_NUL = r"^[^\x00]*$"  # what a path or query parameter matches: PostgreSQL's text takes no NUL
STREAMED = re.compile(r"^/api/v1/transfers/[^/]+/data/")


def _holds_nul(scope: Scope) -> bool:
    return "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _holds_nul(scope):
            response = problem(400, "a NUL character (%00) is not allowed in a path or query")
            await response(scope, receive, send)
            return
        if scope["type"] != "http" or (
            scope["method"] == "PUT" and STREAMED.match(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                if not started:
                    await self._refuse(scope, receive, send)
                # The application sees the client go away and stops reading.
                return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent: whatever the application answers is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"request body larger than {self.max_bytes} bytes")
        await response(scope, receive, send)
