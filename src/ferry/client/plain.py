"""A client on the standard library that answers in plain JSON: what the CLI's commands that ask
and print use (``status``, ``ls``, ``outcomes``, ``runs``, ``cancel``, ``rerun``, ``agents``,
``storage ls|add|rm``), and those that submit and wait or follow (``submit --wait``, ``watch``).

A ``ferry`` command is over in a fraction of a second, so what it imports is most of what it
costs: httpx and the API's pydantic schemas take several times as long to import as the rest of
the command takes to run. The answers are the server's JSON as it sent them, which is what
``--json`` prints; the typed clients (``Client``, ``AsyncClient``) remain the library's API.
"""

from __future__ import annotations

import builtins
import functools
import http.client
import json
import ssl
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from ferry.client._base import (
    OUTCOMES_PAGE,
    RUNS_PAGE,
    WAIT_KINDS,
    BaseClient,
    Request,
    answer,
    pause_request,
    wait_until_final,
)
from ferry.client.tls import tls_context, why_unreachable
from ferry.errors import ApiError, ServerUnreachable

Json = dict[str, Any]
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
STALE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class PlainClient(BaseClient):
    """One connection, kept open for the pages of one command."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        timeout: float = 30.0,
        ca: Path | None = None,
    ) -> None:
        super().__init__(url, token, data_dir, ca)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerUnreachable(self.url, "not an http:// or https:// URL")
        self._parts = parts
        self._connection = self._connect(timeout)
        self._prefix = parts.path

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        """A connection to the server (not opened yet); ``timeout``: per read, None for none."""
        host, port = self._parts.hostname, self._parts.port
        assert host is not None
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        """Made once for the client's connections (the event stream has one of its own):
        loading the certificate authorities is the slow part of a context."""
        return tls_context(self.ca)

    def __enter__(self) -> PlainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def send(self, request: Request) -> Any:
        """The answer's JSON; an error answer raises ``ApiError``, no answer
        ``ServerUnreachable``."""
        target = self._prefix + request.path
        if request.params:
            target += "?" + urlencode(request.params, doseq=True)
        headers = {**self._headers(), "Accept": "application/json"}
        body = None
        if request.json is not None:
            body = json.dumps(request.json).encode()
            headers["Content-Type"] = "application/json"
        reused = self._connection.sock is not None
        try:
            status, reason, content = self._exchange(request.method, target, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            # The server closes a connection left idle (a long wait on the event stream): an
            # idempotent request is sent again, once, on a new one.
            stale = reused and isinstance(exc, STALE_ERRORS) and request.method in IDEMPOTENT
            if not stale:
                raise self._unreachable(exc) from exc
            try:
                status, reason, content = self._exchange(request.method, target, body, headers)
            except (OSError, http.client.HTTPException) as again:
                self._connection.close()
                raise self._unreachable(again) from again
        return answer(status, reason, content)

    def _exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        self._connection.request(method, target, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.reason, response.read()

    def _unreachable(self, exc: BaseException) -> ServerUnreachable:
        hung_up = isinstance(exc, STALE_ERRORS)
        return ServerUnreachable(self.url, why_unreachable(self.url, exc, hung_up=hung_up))

    def submit(
        self,
        sources: Sequence[str | Sequence[str]],
        destination: str,
        *,
        tree: bool = False,
        submission_id: str | None = None,
        schedule: Json | None = None,
        options: Json | None = None,
        scope: str | None = None,
    ) -> Json:
        request = self.submit_request(
            sources,
            destination,
            tree=tree,
            submission_id=submission_id,
            schedule=schedule,
            options=options,
            scope=scope,
        )
        return dict(self.send(request))

    def events(
        self,
        transfer_id: str | None = None,
        kinds: Sequence[str] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> Generator[Json]:
        """Server-sent events as they come, on a connection of their own (the stream holds it
        while other requests go on); ``read_timeout``: ``TimeoutError`` after that long
        without a byte. Lost or refused: ``ServerUnreachable`` or ``ApiError``."""
        query = urlencode(self.event_filter(transfer_id, kinds))
        headers = {**self._headers(), "Accept": "text/event-stream"}
        stream = self._connect(read_timeout)
        try:
            try:
                stream.request("GET", f"{self._prefix}/api/v1/events?{query}", headers=headers)
                response = stream.getresponse()
                if response.status >= 400:
                    answer(response.status, response.reason, response.read())
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc) from exc
            lines: builtins.list[str] = []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line:
                    lines.append(line)
                    continue
                event = self.parse_event(lines)
                lines = []
                if event is not None:
                    yield event
        finally:
            stream.close()

    def wait(
        self,
        transfer_id: str,
        *,
        timeout: float | None = None,
        on_event: Callable[[Json], None] | None = None,
        kinds: Sequence[str] | None = WAIT_KINDS,
    ) -> Json:
        """The transfer once its status is final, told by its events the moment it is (as the
        typed client's ``wait``); ``on_event``: called with each event of ``kinds``."""
        wanted = kinds if on_event else ("transfer",)

        def follow(read_timeout: float | None) -> Generator[Json]:
            return self.events(transfer_id, wanted, read_timeout=read_timeout)

        return wait_until_final(
            follow,
            lambda: self.get(transfer_id),
            lambda transfer: str(transfer["status"]),
            transfer_id=transfer_id,
            timeout=timeout,
            poll_s=0.2,
            on_event=on_event,
            stream_errors=(OSError, http.client.HTTPException, ApiError, ServerUnreachable),
        )

    def plan(
        self, sources: Sequence[str | Sequence[str]], destination: str, **submission: Any
    ) -> Json:
        """A dry run of a submission (``submit``'s arguments): the plan, nothing stored."""
        return dict(self.send(self.plan_request(sources, destination, **submission)))

    def next_plan(self, transfer_id: str) -> Json:
        """What the transfer's next run would do if it began now."""
        return dict(self.send(self.next_plan_request(transfer_id)))

    def get(self, transfer_id: str) -> Json:
        return dict(self.send(Request("GET", f"/api/v1/transfers/{transfer_id}")))

    def list(self, *, limit: int = 100, cursor: str | None = None, **filters: str | None) -> Json:
        """One page, newest first (``items``, ``next_cursor``)."""
        return dict(self.send(self.list_request(limit=limit, cursor=cursor, **filters)))

    def list_all(self, **filters: str | None) -> builtins.list[Json]:
        """Every matching transfer, following the cursor."""
        found: builtins.list[Json] = []
        cursor = None
        while True:
            page = self.list(limit=1000, cursor=cursor, **filters)
            found += page["items"]
            if page["next_cursor"] is None:
                return found
            cursor = page["next_cursor"]

    def entries(
        self, storage: str, path: str, *, scope: str, after: str | None = None, limit: int = 1000
    ) -> Json:
        """One page of what a storage holds at ``path`` (``entries``, ``next_after``)."""
        query = {"path": path, "scope": scope, "limit": str(limit)}
        if after is not None:
            query["after"] = after
        asked = f"/api/v1/storages/{storage}/entries?{urlencode(query)}"
        return dict(self.send(Request("GET", asked)))

    def cancel(self, transfer_id: str) -> Json:
        return dict(self.send(Request("POST", f"/api/v1/transfers/{transfer_id}/cancel")))

    def pause(self, transfer_id: str, *, now: bool = False) -> Json:
        return dict(self.send(pause_request(transfer_id, now=now)))

    def resume(self, transfer_id: str) -> Json:
        return dict(self.send(Request("POST", f"/api/v1/transfers/{transfer_id}/resume")))

    def pause_agent(self, agent: str) -> Json:
        return dict(self.send(Request("POST", f"/api/v1/agents/{agent}/pause")))

    def resume_agent(self, agent: str) -> Json:
        return dict(self.send(Request("POST", f"/api/v1/agents/{agent}/resume")))

    def rerun(self, transfer_id: str) -> Json:
        return dict(self.send(Request("POST", f"/api/v1/transfers/{transfer_id}/rerun")))

    def outcomes(
        self,
        transfer_id: str,
        *,
        run: int | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> Json:
        """The run's objects, in one answer: every page, or the first ``limit`` objects (then
        ``next_cursor`` says where the rest starts); ``status``: those in that state only."""
        path = f"/api/v1/transfers/{transfer_id}/outcomes"
        merged: Json | None = None
        cursor: Any = 0
        while cursor is not None:
            got = len(merged["objects"]) if merged else 0
            if limit is not None and got >= limit:
                break
            page_size = OUTCOMES_PAGE if limit is None else min(OUTCOMES_PAGE, limit - got)
            params: Json = {"cursor": cursor, "limit": page_size, "run": run, "status": status}
            kept = {name: value for name, value in params.items() if value is not None}
            page = dict(self.send(Request("GET", path, params=kept)))
            if merged is None:
                merged = page
            else:
                merged["objects"] += page["objects"]
            cursor = page["next_cursor"]
        assert merged is not None
        return merged | {"next_cursor": cursor}

    def runs(self, transfer_id: str) -> builtins.list[Json]:
        """Every run of the transfer, oldest first (all pages)."""
        path = f"/api/v1/transfers/{transfer_id}/runs"
        found: builtins.list[Json] = []
        while True:
            params = {"after": found[-1]["number"] if found else 0}
            page = self.send(Request("GET", path, params=params))
            found += page
            if len(page) < RUNS_PAGE:
                return found

    def listing(self, resource: str) -> builtins.list[Json]:
        """``agents``, ``storages``, ``channels`` or ``scopes``: the registry's list."""
        return builtins.list(self.send(Request("GET", f"/api/v1/{resource}")))

    def remove_storage(self, name: str) -> None:
        self.send(Request("DELETE", f"/api/v1/storages/{name}"))
