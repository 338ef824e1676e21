"""Finalize hooks: each finished run of a transfer with ``notify`` enqueues one summary, which the
notify loop posts once, retrying failures with backoff and giving up after MAX_ATTEMPTS."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ferry import __version__
from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions, TransferSpec
from ferry.scheduler.loop import Wakeups
from ferry.scheduler.notify import MAX_ATTEMPTS, NotifyLoop, without_query
from ferry.store.abc import NewTransfer, TaskResult
from ferry.store.sql import SqlStore

from .conftest import Clock

HOOK = "http://hooks.example/ferry"
TTL = timedelta(seconds=30)


@pytest.fixture
def finished(store: SqlStore, clock: Clock) -> Callable[..., object]:
    """A one-object transfer run to the end (its run closed); returns the transfer id."""

    async def finished(notify: str | None = HOOK, nbytes: int = 42) -> str:
        spec = TransferSpec(
            TransferKind.FILE,
            (parse_location("src:a.bin"),),
            parse_location("dst:out"),
            TransferOptions(notify=notify),
        )
        transfer, _ = await store.create_transfer(
            NewTransfer("default", "admin", spec, {}, clock.now)
        )
        await store.claim_due_transfers(clock.now, 10)
        transfer = await store.get_transfer(transfer.id)
        planned = [PlannedTask(parse_location("src:a.bin"), parse_location("dst:out/a.bin"), 42)]
        await store.add_tasks(transfer, 1, planned)
        await store.mark_expanded(transfer.id, 1)
        agent = await register(store, f"agent-{transfer.id}")
        [task] = await store.lease_tasks(agent, limit=1, ttl=TTL)
        result = TaskResult(task.id, task.lease, TaskState.DONE, bytes=nbytes)
        await store.record_results(agent, [result])
        await store.finish_runs(clock.now)
        return transfer.id

    return finished


async def register(store: SqlStore, name: str) -> str:
    secret = await store.issue_agent_secret(name, timedelta(minutes=5))
    agent, _token = await store.register_agent(
        secret=secret, principal=None, name=name, host="host", capabilities={}
    )
    return agent.id


class Hook:
    """A mock transport that answers every post with ``status`` (or raises ``error``)."""

    def __init__(self, status: int = 204, error: Exception | None = None) -> None:
        self.status = status
        self.error = error
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def notifier(store: SqlStore, clock: Clock, hook: Hook, **kwargs: timedelta) -> NotifyLoop:
    return NotifyLoop(store, Wakeups(), clock=clock, transport=hook.transport, **kwargs)


# --- the outbox -----------------------------------------------------------------------------------


async def test_a_finished_run_enqueues_its_summary_once(store, clock, finished) -> None:
    transfer_id = await finished(nbytes=42)
    assert await store.finish_runs(clock.now) == []  # closing again finds nothing to close

    [notification] = await store.due_notifications(clock.now, limit=10)

    assert (notification.transfer_id, notification.run, notification.url) == (transfer_id, 1, HOOK)
    assert notification.attempts == 0
    payload = notification.payload
    assert (payload["event"], payload["transfer"], payload["scope"]) == (
        "run.finished",
        transfer_id,
        "default",
    )
    assert (payload["run"], payload["status"], payload["bytes"]) == (1, "COMPLETED", 42)
    assert payload["objects"] == {
        "total": 1,
        "done": 1,
        "failed": 0,
        "skipped": 0,
        "canceled": 0,
        "filtered": 0,
        "deleted": 0,
    }
    assert payload["finished_at"] == clock.now.isoformat()


async def test_a_transfer_without_notify_enqueues_nothing(store, clock, finished) -> None:
    await finished(notify=None)
    assert await store.due_notifications(clock.now, limit=10) == []


async def test_each_finished_run_has_its_own_notification(store, clock, finished) -> None:
    first, second = await finished(), await finished()
    due = await store.due_notifications(clock.now, limit=10)
    assert sorted(n.transfer_id for n in due) == sorted([first, second])


# --- delivery -------------------------------------------------------------------------------------


async def test_a_notification_is_posted_once(store, clock, finished) -> None:
    transfer_id = await finished()
    hook = Hook()
    loop = notifier(store, clock, hook)

    await loop.run_once()
    clock.advance(hours=1)
    await loop.run_once()

    [request] = hook.requests
    assert (request.method, str(request.url)) == ("POST", HOOK)
    assert request.headers["user-agent"] == f"ferry/{__version__}"
    assert json.loads(request.content)["transfer"] == transfer_id
    assert await store.due_notifications(clock.now, limit=10) == []


async def test_a_failed_post_is_retried_after_its_backoff(store, clock, finished) -> None:
    await finished()
    hook = Hook(status=503)
    loop = notifier(store, clock, hook, retry_base=timedelta(seconds=10))

    await loop.run_once()
    clock.advance(seconds=4.9)  # the first backoff is between 5 and 10 s
    assert await store.due_notifications(clock.now, limit=10) == []
    await loop.run_once()
    assert len(hook.requests) == 1

    clock.advance(seconds=5.1)
    [again] = await store.due_notifications(clock.now, limit=10)
    assert again.attempts == 1
    hook.status = 200
    await loop.run_once()

    assert len(hook.requests) == 2
    clock.advance(hours=1)
    assert await store.due_notifications(clock.now, limit=10) == []


async def test_an_unreachable_hook_is_retried_like_an_error_status(store, clock, finished) -> None:
    await finished()
    hook = Hook(error=httpx.ConnectError("connection refused"))
    loop = notifier(store, clock, hook, retry_base=timedelta(seconds=1))

    await loop.run_once()
    clock.advance(seconds=1)

    [again] = await store.due_notifications(clock.now, limit=10)
    assert again.attempts == 1


async def test_a_hook_that_keeps_failing_is_given_up_after_max_attempts(
    store, clock, finished
) -> None:
    await finished()
    hook = Hook(status=500)
    step = timedelta(seconds=1)
    loop = notifier(store, clock, hook, retry_base=step, retry_cap=step)

    for _ in range(MAX_ATTEMPTS + 3):
        await loop.run_once()
        clock.advance(seconds=1)

    assert len(hook.requests) == MAX_ATTEMPTS
    clock.advance(days=1)
    assert await store.due_notifications(clock.now, limit=10) == []


async def test_one_failing_hook_does_not_hold_back_another(store, clock, finished) -> None:
    await finished(notify="http://down.example/hook")
    await finished(notify=HOOK)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.host == "down.example" else 204)

    loop = NotifyLoop(store, Wakeups(), clock=clock, transport=httpx.MockTransport(answer))
    await loop.run_once()
    clock.advance(minutes=11)

    [left] = await store.due_notifications(clock.now, limit=10)
    assert left.url == "http://down.example/hook"


async def test_a_hook_url_httpx_cannot_parse_is_given_up_like_any_failure(
    store, clock, finished
) -> None:
    await finished(notify="http://hooks.example:port/ferry")  # stored before the API checked it
    hook = Hook()
    step = timedelta(seconds=1)
    loop = notifier(store, clock, hook, retry_base=step, retry_cap=step)

    for _ in range(MAX_ATTEMPTS):
        await loop.run_once()
        clock.advance(seconds=1)

    assert await store.due_notifications(clock.now, limit=10) == []


# --- against a real HTTP server -------------------------------------------------------------------


class Received(BaseHTTPRequestHandler):
    posts: list[tuple[str, dict[str, object]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[tuple[str, dict[str, object]]]]]:
    posts: list[tuple[str, dict[str, object]]] = []
    handler = type("Handler", (Received,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/ferry", posts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_a_summary_reaches_a_real_http_server_once(store, clock, finished, hook_server):
    url, posts = hook_server
    transfer_id = await finished(notify=url)
    loop = NotifyLoop(store, Wakeups(), clock=clock)

    await loop.run_once()
    await loop.run_once()

    [(path, payload)] = posts
    assert path == "/hooks/ferry"
    assert (payload["transfer"], payload["status"]) == (transfer_id, "COMPLETED")
    assert await store.due_notifications(clock.now + timedelta(days=1), limit=10) == []


def test_a_hook_is_logged_without_its_query_whatever_its_names() -> None:
    assert without_query("https://h.example/x?token=a&key=b#c") == "https://h.example/x?[redacted]"
    assert without_query("https://h.example/x") == "https://h.example/x"
