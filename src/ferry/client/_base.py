"""What every client shares, with no I/O: finding the server and token, building requests,
reading answers as JSON. Nothing here imports an HTTP library or the API's schemas: the plain
client (``plain.py``) builds on it alone, so that a command that asks once starts fast."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from ferry.client.tls import find_ca
from ferry.errors import ApiError, Unauthenticated

if TYPE_CHECKING:
    import httpx

    from ferry.client.local import LocalObject

DEFAULT_URL = "http://127.0.0.1:8470"
RUNS_PAGE = 1000  # the server's page of runs
OUTCOMES_PAGE = 1000  # objects asked for per page of outcomes
PASSIVE_ATTEMPTS = 3  # sends of a pushed object the server could not take (transient)
FINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"})
WAIT_KINDS = ("transfer", "progress")  # what ``wait`` follows when its caller shows progress


def left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (``time.monotonic()``), none when it passed; None: no end."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def ends_wait(event: dict[str, Any], deadline: float | None) -> bool:
    """Whether a waiter stops following the stream: the transfer ended, events were lost
    (``lagged``: the status is read instead), or the deadline passed."""
    final = event["event"] == "transfer" and event["status"] in FINAL_STATUSES
    return final or event["event"] == "lagged" or left(deadline) == 0.0


T = TypeVar("T")


def wait_until_final(
    follow: Callable[[float | None], Generator[dict[str, Any]]],
    read: Callable[[], T],
    status_of: Callable[[T], str],
    *,
    transfer_id: str,
    timeout: float | None,
    poll_s: float,
    on_event: Callable[[dict[str, Any]], None] | None,
    stream_errors: tuple[type[BaseException], ...],
) -> T:
    """What the synchronous clients' ``wait`` does: ``follow`` the transfer's events (given the
    seconds left) until one ends the wait, then ``read`` the transfer until its status is final,
    polling with a back-off to one poll a second when the stream could not be had or ended early
    (``stream_errors``: what its loss looks like); ``TimeoutError`` past ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with contextlib.suppress(*stream_errors), contextlib.closing(follow(left(deadline))) as stream:
        for event in stream:
            if on_event:
                on_event(event)
            if ends_wait(event, deadline):
                break
    while True:
        transfer = read()
        if status_of(transfer) in FINAL_STATUSES:
            return transfer
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"transfer {transfer_id} still {status_of(transfer)} after {timeout} s"
            )
        time.sleep(poll_s)
        poll_s = min(poll_s * 1.5, 1.0)


def find_token(token: str | None, data_dir: Path | None) -> str:
    """``token``, else ``FERRY_TOKEN``, else the administrator token in the data directory."""
    if token:
        return token
    if env := os.environ.get("FERRY_TOKEN"):
        return env
    candidate = (data_dir or Path(".ferry")) / "admin.token"
    try:
        return candidate.read_text().strip()
    except OSError as exc:
        raise Unauthenticated(
            f"no token: set FERRY_TOKEN or start the server here ({candidate}: {exc.strerror})"
        ) from exc


def find_url(url: str | None) -> str:
    return (url or os.environ.get("FERRY_URL") or DEFAULT_URL).rstrip("/")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None


def pause_request(transfer_id: str, *, now: bool = False) -> Request:
    """A transfer's pause; ``now``: its active copies stop too."""
    body = {"now": True} if now else None
    return Request("POST", f"/api/v1/transfers/{transfer_id}/pause", json=body)


class BaseClient:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        ca: Path | None = None,
    ) -> None:
        self.url = find_url(url)
        self.ca = find_ca(ca)
        self._token = token
        self._data_dir = data_dir

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {find_token(self._token, self._data_dir)}"}

    @staticmethod
    def submit_request(
        sources: Sequence[str | Sequence[str]],
        destination: str,
        *,
        tree: bool = False,
        submission_id: str | None = None,
        schedule: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        scope: str | None = None,
    ) -> Request:
        body: dict[str, Any] = {
            # A source with replicas is the list of its places, tried in order.
            "sources": [s if isinstance(s, str) else list(s) for s in sources],
            "destination": destination,
            "kind": "tree" if tree else "file",
        }
        if schedule:
            body["schedule"] = schedule
        if options:
            body["options"] = options
        if submission_id:
            body["submission_id"] = submission_id
        if scope:
            body["scope"] = scope
        return Request("POST", "/api/v1/transfers", json=body)

    @classmethod
    def plan_request(
        cls, sources: Sequence[str | Sequence[str]], destination: str, **submission: Any
    ) -> Request:
        """What a run of the submission ``submit_request`` would make would do now (a dry run:
        nothing is stored); ``submission``: its keyword arguments."""
        submit = cls.submit_request(sources, destination, **submission)
        return Request("POST", "/api/v1/transfers/plan", json=submit.json)

    @staticmethod
    def next_plan_request(transfer_id: str) -> Request:
        """What the transfer's next run would do if it began now."""
        return Request("GET", f"/api/v1/transfers/{transfer_id}/plan")

    @staticmethod
    def add_storage_request(
        name: str,
        url: str,
        *,
        site: str = "default",
        options: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> Request:
        body = {
            "name": name,
            "url": url,
            "site": site,
            "options": options or {},
            "credentials": credentials or {},
        }
        if replace:
            return Request("PUT", f"/api/v1/storages/{quote(name, safe='')}", json=body)
        return Request("POST", "/api/v1/storages", json=body)

    @staticmethod
    def list_request(
        *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> Request:
        """``filters``: status, kind, submitter, scope, schedule (its kind), label, q (text)."""
        params = {"limit": limit, "cursor": cursor, **filters}
        kept = {name: value for name, value in params.items() if value is not None}
        return Request("GET", "/api/v1/transfers", params=kept)

    @staticmethod
    def channel_request(
        source_site: str,
        destination_site: str,
        *,
        max_active: int | None = None,
        bandwidth: int | None = None,
        state: str = "active",
        optimize: bool = False,
        min_active: int | None = None,
        bandwidth_timetable: str | None = None,
        timezone: str = "UTC",
    ) -> Request:
        body = {"max_active": max_active, "bandwidth": bandwidth, "state": state}
        body |= {"bandwidth_timetable": bandwidth_timetable, "timezone": timezone}
        if optimize or min_active is not None:  # an older server knows neither
            body |= {"optimize": optimize, "min_active": min_active}
        path = f"/api/v1/channels/{quote(source_site, safe='')}/{quote(destination_site, safe='')}"
        return Request("PUT", path, json=body)

    @staticmethod
    def push_request(
        objects: list[LocalObject],
        destination: str,
        *,
        options: dict[str, Any] | None = None,
        scope: str | None = None,
    ) -> Request:
        body: dict[str, Any] = {
            "destination": destination,
            "objects": [{"name": o.name, "size": o.size, "mtime": o.mtime} for o in objects],
        }
        if options:
            body["options"] = options
        if scope:
            body["scope"] = scope
        return Request("POST", "/api/v1/transfers/push", json=body)

    @staticmethod
    def pull_request(
        sources: list[str], *, options: dict[str, Any] | None = None, scope: str | None = None
    ) -> Request:
        body: dict[str, Any] = {"sources": sources}
        if options:
            body["options"] = options
        if scope:
            body["scope"] = scope
        return Request("POST", "/api/v1/transfers/pull", json=body)

    @staticmethod
    def data_path(transfer_id: str, name: str, kind: str = "data") -> str:
        return f"/api/v1/transfers/{transfer_id}/{kind}/{quote(name)}"

    @staticmethod
    def skipped_path(transfer_id: str) -> str:
        return f"/api/v1/transfers/{transfer_id}/skipped"

    @staticmethod
    def skipped_bodies(names: list[str]) -> Iterator[dict[str, Any]]:
        """The bodies of ``/skipped`` that name the pulled objects already here, as few as
        the server's limit per call allows."""
        from ferry.api.schemas import SKIPPED_MAX

        for start in range(0, len(names), SKIPPED_MAX):
            yield {"names": names[start : start + SKIPPED_MAX]}

    @staticmethod
    def event_filter(
        transfer_id: str | None, kinds: Sequence[str] | None
    ) -> tuple[tuple[str, str], ...]:
        """The query of ``GET /events``: one transfer, some kinds (the parameter repeated)."""
        query = tuple(("kind", kind) for kind in kinds or ())
        return query + ((("transfer", transfer_id),) if transfer_id else ())

    @staticmethod
    def parse_event(lines: list[str]) -> dict[str, Any] | None:
        """One server-sent event from its lines (``event:``/``data:``); None for a comment."""
        data = "".join(line[5:].strip() for line in lines if line.startswith("data:"))
        return json.loads(data) if data else None

    @staticmethod
    def parse(response: httpx.Response) -> Any:
        return answer(response.status_code, response.reason_phrase, response.content)


def answer(status: int, reason: str, content: bytes) -> Any:
    """An answer's JSON body; an error answer (problem+json or not) raises ``ApiError``."""
    if status >= 400:
        raise ApiError.from_answer(status, reason, content)
    if status == 204:
        return None
    return json.loads(content)
