"""Finalize hooks (FTS's finalize callbacks): post each finished run's summary to the transfer's
``notify`` URL. The summaries wait in an outbox written with the run's end; failures are
retried with backoff; the posts run here, never inside another loop."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from ferry import __version__
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import Notification, Store

log = logging.getLogger("ferry.scheduler")

POST_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 10


def without_query(url: str) -> str:
    """The URL as a log line may show it: a webhook's query (its token, often, under any
    name) and fragment are secrets of whoever submitted it."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    return f"{base}?[redacted]" if base != url else base


class NotifyLoop(Loop):
    name = "notify"
    singleton = True
    interval = 1.0

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        retry_base: timedelta = timedelta(seconds=10),
        retry_cap: timedelta = timedelta(minutes=10),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.transport = transport

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.notify

    async def run_once(self) -> None:
        due = await self.store.due_notifications(self.clock(), limit=100)
        if not due:
            return
        async with httpx.AsyncClient(
            timeout=POST_TIMEOUT_S,
            transport=self.transport,
            headers={"User-Agent": f"ferry/{__version__}"},
            follow_redirects=False,
        ) as client:
            outcomes = await asyncio.gather(
                *(self._deliver(client, n) for n in due), return_exceptions=True
            )
        for notification, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("hook %d could not be handled: %r", notification.id, outcome)

    async def _deliver(self, client: httpx.AsyncClient, notification: Notification) -> None:
        error = None
        try:
            response = await client.post(notification.url, json=notification.payload)
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if error is None:
            await self.store.record_notification(
                notification.id, delivered=True, error=None, retry_at=None
            )
            return
        attempt = notification.attempts + 1
        retry_at = None if attempt >= MAX_ATTEMPTS else self.clock() + self._backoff(attempt)
        log.warning(
            "hook for transfer %s run %d (%s): %s; %s",
            notification.transfer_id,
            notification.run,
            without_query(notification.url),
            error,
            f"retry at {retry_at:%H:%M:%S}" if retry_at else f"given up after {attempt} attempts",
        )
        await self.store.record_notification(
            notification.id, delivered=False, error=error, retry_at=retry_at
        )

    def _backoff(self, attempt: int) -> timedelta:
        step: timedelta = min(self.retry_base * (2 ** (attempt - 1)), self.retry_cap)
        return step * random.uniform(0.5, 1.0)
