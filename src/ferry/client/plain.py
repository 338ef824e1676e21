"""A client on the standard library that answers in plain JSON: what the CLI's commands that ask
and print use (``status``, ``ls``, ``outcomes``, ``runs``, ``cancel``, ``agents``, ``storage
ls|add|rm``).

A ``ferry`` command is over in a fraction of a second, so what it imports is most of what it
costs: httpx and the API's pydantic schemas take several times as long to import as the rest of
the command takes to run. The answers are the server's JSON as it sent them, which is what
``--json`` prints; the typed clients (``Client``, ``AsyncClient``) remain the library's API.
"""

from __future__ import annotations

import builtins
import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from ferry.client._base import (
    OUTCOMES_PAGE,
    RUNS_PAGE,
    BaseClient,
    Request,
    answer,
)
from ferry.client.tls import tls_context, why_unreachable
from ferry.errors import ServerUnreachable

Json = dict[str, Any]


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
        self._connection: http.client.HTTPConnection
        if parts.scheme == "https":
            self._connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=tls_context(self.ca)
            )
        else:
            self._connection = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=timeout
            )
        self._prefix = parts.path

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
        try:
            self._connection.request(request.method, target, body=body, headers=headers)
            response = self._connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            hung_up = isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError)
            why = why_unreachable(self.url, exc, hung_up=hung_up)
            raise ServerUnreachable(self.url, why) from exc
        return answer(response.status, response.reason, content)

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

    def cancel(self, transfer_id: str) -> Json:
        return dict(self.send(Request("POST", f"/api/v1/transfers/{transfer_id}/cancel")))

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
