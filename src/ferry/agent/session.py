"""The agent's side of the agent protocol (DESIGN §5): one HTTP session with the server, or
with one server at a time of several sharing a database.

With several servers the agent works for the first; a call that gets no answer from it (the
connection refused, reset or timed out) is sent at once to the next, which the agent then
keeps. Their database is one, so the agent's token, its leases and its reports are the same on
each: a report sent again changes nothing, and a lease granted by a server that died before
answering goes back to the queue at its TTL."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from ferry import __version__
from ferry.agent.credentials import save_token, saved_token
from ferry.api.protocol import (
    PROTOCOL,
    AgentLeft,
    AgentRegister,
    AgentRegistered,
    AnswerReply,
    CommandAnswer,
    Heartbeat,
    HeartbeatReply,
    LeaseReply,
    LeaseRequest,
    ReportReply,
    Results,
    TaskReport,
    decode,
    encode,
)
from ferry.client.tls import tls_context, untrusted, why_unreachable
from ferry.config import server_list
from ferry.errors import ApiError, ServerUnreachable

log = logging.getLogger("ferry.agent")

CONNECT_RETRY_MAX_S = 5.0
BAD_REPLY = 502  # what an answer the agent cannot read stands for: a bad gateway's

Reply = TypeVar("Reply")


class ServerSession:
    def __init__(
        self,
        server: str | list[str],
        *,
        name: str,
        secret: str | None,
        token: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        ca: Path | None = None,
        keep_token: Path | None = None,
    ) -> None:
        self.name = name
        self.servers = server_list(server) if isinstance(server, str) else list(server)
        self._at = 0  # the server the agent works for now
        self._secret = secret
        self._token = token
        self._keep_token = keep_token
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0),
            transport=transport,
            verify=tls_context(ca) if ca else True,
        )
        self.agent_id = ""
        self.heartbeat_s = 5.0
        self.lease_ttl_s = 30.0
        self.protocol = 1  # the server's, as its registration reply says

    def _kept_token(self) -> str | None:
        return None if self._keep_token is None else saved_token(self._keep_token)

    @property
    def server(self) -> str:
        """The URL of the server the agent works for now."""
        return self.servers[self._at]

    async def close(self) -> None:
        await self._http.aclose()

    async def register(self, capabilities: dict[str, Any], *, patience_s: float = 60.0) -> None:
        """Register, retrying while the server is not reachable yet (it may be starting); a
        certificate not trusted will not change by waiting: ``ServerUnreachable`` at once. The
        new token replaces the old one on the server, and in ``keep_token``, at once.
        ``capabilities`` are sent with the protocol this agent speaks (``PROTOCOL``)."""
        body = AgentRegister(
            name=self.name,
            host=socket.gethostname(),
            capabilities={**capabilities, "protocol": PROTOCOL},
            secret=self._secret or None,
        )
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + patience_s, 0.1
        while True:
            try:
                reply = await self._call("/agents/register", body, AgentRegistered)
                break
            except ApiError as exc:
                kept = self._kept_token() if exc.status == 401 and self._secret else None
                if kept is not None:
                    # A one-time secret left in the agent's environment is refused once spent;
                    # the token its registration kept is who the agent is since.
                    log.warning(
                        "the one-time secret was refused (%s): registering with the token kept"
                        " in %s",
                        exc.detail,
                        self._keep_token,
                    )
                    self._secret, self._token, body.secret = None, kept, None
                    continue
                if exc.status == 401 and not self._secret:
                    raise ApiError(
                        exc.status,
                        exc.title,
                        f"{exc.detail}: the agent's token was revoked, or replaced by another"
                        f" registration of {self.name}; a new one-time secret registers it"
                        f" again (ferry agent-invite {self.name})",
                    ) from exc
                raise
            except httpx.TransportError as exc:
                if loop.time() >= deadline or untrusted(exc):
                    hung_up = isinstance(exc, httpx.RemoteProtocolError)
                    why = why_unreachable(self.server, exc, hung_up=hung_up)
                    raise ServerUnreachable(self.server, why) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, CONNECT_RETRY_MAX_S)
        self._secret = None  # spent
        self._token = reply.token
        if self._keep_token is not None:
            save_token(self._keep_token, self._token)
        self.agent_id = reply.id
        self.heartbeat_s = reply.heartbeat_s
        self.lease_ttl_s = reply.lease_ttl_s
        self.protocol = reply.protocol
        log.info("registered as %s (%s)", self.name, self.agent_id)

    async def lease(self, max_tasks: int, wait_s: float) -> LeaseReply:
        body = LeaseRequest(max_tasks=max_tasks, wait_s=wait_s)
        path = f"/agents/{self.agent_id}/lease"
        return await self._call(path, body, LeaseReply, timeout=wait_s + 30.0)

    async def report(self, results: list[TaskReport]) -> ReportReply:
        return await self._call(f"/agents/{self.agent_id}/report", results, ReportReply)

    async def results(self, body: Results) -> ReportReply:
        """Report single tasks and chunks to a server of protocol 2 or later."""
        return await self._call(f"/agents/{self.agent_id}/results", body, ReportReply)

    async def heartbeat(
        self, active: list[tuple[int, int]], state: dict[str, Any]
    ) -> HeartbeatReply:
        """The tasks to stop, and the bandwidth tasks may use now (where it changes)."""
        body = Heartbeat(active=active, state=state)
        return await self._call(f"/agents/{self.agent_id}/heartbeat", body, HeartbeatReply)

    async def answer(self, answer: CommandAnswer) -> bool:
        """Post the answer to an administrator's command; False when nobody waits for it."""
        path = f"/agents/{self.agent_id}/answer"
        return (await self._call(path, answer, AnswerReply, timeout=10.0)).accepted

    async def leave(self) -> int:
        """Tell the server this agent is going: leases it still holds (one whose reply never
        arrived) go back to the queue now; return how many."""
        path = f"/agents/{self.agent_id}/leave"
        return (await self._call(path, None, AgentLeft, timeout=10.0)).released

    async def _call(
        self, path: str, body: object, reply: type[Reply], *, timeout: float | None = None
    ) -> Reply:
        """POST ``body`` (a protocol record, a list of them, or nothing) to ``path`` and read
        its answer as a ``reply``; an error answer raises ``ApiError``."""
        headers = {"User-Agent": f"ferry-agent/{__version__}"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        content = b"" if body is None else encode(body)
        if body is not None:
            headers["Content-Type"] = "application/json"
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        response = await self._post(path, content, headers, extra)
        if response.is_error:
            raise ApiError.from_answer(
                response.status_code, response.reason_phrase, response.content
            )
        try:
            return decode(reply, response.content)
        except ValidationError as exc:
            # A proxy's page answered with 200, or a server that speaks another protocol: the
            # agent's loops take it as any bad answer (wait, then ask again), not as a crash.
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "body"
            raise ApiError(
                BAD_REPLY,
                "Bad reply",
                f"the server's answer to {path} is not {reply.__name__}: {where}: {error['msg']}",
            ) from exc

    async def _post(
        self, path: str, content: bytes, headers: dict[str, str], extra: dict[str, Any]
    ) -> httpx.Response:
        """POST to the server worked for; when it does not answer, to each next one in turn,
        keeping the first that answers. Raises the last ``httpx.TransportError`` when none
        does."""
        for _ in range(len(self.servers) - 1):
            try:
                return await self._http.post(
                    self._url(path), content=content, headers=headers, **extra
                )
            except httpx.TransportError as exc:
                gone, self._at = self.server, (self._at + 1) % len(self.servers)
                log.warning(
                    "server %s did not answer (%s): going on with %s",
                    gone,
                    type(exc).__name__,
                    self.server,
                )
        return await self._http.post(self._url(path), content=content, headers=headers, **extra)

    def _url(self, path: str) -> str:
        return f"{self.server}/api/v1{path}"
