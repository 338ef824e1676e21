"""Servers of one PostgreSQL database tell each other what they did, through the database.

Each server fires wake-ups (new work to lease, a transfer due, a run to finish) and publishes
events (the stream of ``GET /events``) for its own loops and subscribers. With several servers,
an agent of server A reports to A, a transfer is submitted to B, the singleton loops run on
whichever holds their lock: so each wake-up and event is also sent on the channel ``ferry``
(``NOTIFY``), and every server listening there (``LISTEN``) fires and publishes what the others
sent, as if it had seen it. A server drops its own notices (each carries its node id).

Notices are sent from one task, a batch at a time: the wake-up names fired since the last batch
(once each) and the events, split into payloads under PostgreSQL's 8,000 bytes. A lost
connection is made again with backoff; while it is away, each server's loops still wake on
their own intervals and long-polls at their ends, so nothing waits longer than it did without
notices; on its return every wake-up fires here once and the event streams are told they may
have missed events (``Lagged``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import orjson
import psycopg

from ferry.domain.events import Event, event_from_json
from ferry.scheduler.loop import Wakeups
from ferry.store.sql_watch import libpq_url

log = logging.getLogger("ferry.scheduler")

CHANNEL = "ferry"
MOST_BYTES = 7_500  # a NOTIFY payload is less than 8,000 bytes
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 5.0


class ClusterNotices:
    """This server's side of the channel: sends what is fired and published here, and fires
    and publishes here what the other servers send."""

    def __init__(self, url: str, wakeups: Wakeups) -> None:
        self.node = uuid.uuid4().hex[:16]
        self._conninfo = libpq_url(url)
        self._wakeups = wakeups
        self._woken: set[str] = set()
        self._events: list[dict[str, Any]] = []
        self._pending = asyncio.Event()
        self.listening = asyncio.Event()  # set while LISTEN is in force

    def start(self) -> None:
        """Relay what this server fires and publishes from now on."""
        self._wakeups.relay_to(self._wake, self._event)

    def stop(self) -> None:
        self._wakeups.relay_to(None, None)

    def _wake(self, name: str) -> None:
        self._woken.add(name)
        self._pending.set()

    def _event(self, event: Event) -> None:
        self._events.append(event.to_json())
        self._pending.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen and send until ``stop``, connecting again after a failure."""
        delay = RECONNECT_FIRST_S
        cut_off = False
        while not stop.is_set():
            try:
                await self._session(stop, caught_up=cut_off)
                delay = RECONNECT_FIRST_S
            except (psycopg.Error, OSError) as exc:  # the database's state: one line
                log.warning(
                    "the other servers' notices are cut off (%s): trying again in %.1f s",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    delay,
                )
            except Exception:  # a bug must not end the relay for the server's life
                log.exception("the other servers' notices failed: trying again in %.1f s", delay)
            else:
                continue
            self.listening.clear()
            cut_off = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _session(self, stop: asyncio.Event, *, caught_up: bool) -> None:
        listener = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        sender = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        async with listener, sender:
            await listener.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            if caught_up:  # what was missed meanwhile: look again, and tell the streams
                log.info("the other servers' notices are back")
                for name in self._wakeups.signals:
                    self._wakeups.woken_elsewhere(name)
                self._wakeups.events.lag_all()
            tasks = [
                asyncio.create_task(self._receive(listener)),
                asyncio.create_task(self._send(sender)),
                asyncio.create_task(stop.wait()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            self.listening.clear()
            for task in done:
                task.result()  # a connection's failure is raised to ``run``

    async def _receive(self, listener: psycopg.AsyncConnection[Any]) -> None:
        async for notice in listener.notifies():
            self._told(notice.payload)

    def _told(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message.get("node") == self.node:
                return
            for name in message.get("wake", ()):
                self._wakeups.woken_elsewhere(name)
            for data in message.get("events", ()):
                self._wakeups.events.publish_here(event_from_json(data))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("a notice on channel %s could not be read: %s", CHANNEL, exc)

    async def _send(self, sender: psycopg.AsyncConnection[Any]) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            woken, self._woken = sorted(self._woken), set()
            events, self._events = self._events, []
            for payload in payloads(self.node, woken, events):
                await sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def payloads(node: str, woken: list[str], events: list[dict[str, Any]]) -> list[str]:
    """The notices of one batch, each under ``MOST_BYTES``: the wake-ups with the first events,
    then the other events. A task batch too large for one notice is split by its changes;
    anything else too large (no event is) is dropped with a warning."""
    head = {"node": node, "wake": woken, "events": []}
    messages: list[dict[str, Any]] = [head]
    size = len(orjson.dumps(head))
    for event in (part for data in events for part in _parts(data)):
        encoded = len(orjson.dumps(event))
        if encoded + 64 > MOST_BYTES:
            log.warning("an event of %d bytes is too large to tell the other servers", encoded)
            continue
        if size + encoded + 1 > MOST_BYTES:
            messages.append({"node": node, "wake": [], "events": []})
            size = len(orjson.dumps(messages[-1]))
        messages[-1]["events"].append(event)
        size += encoded + 1
    return [orjson.dumps(m).decode() for m in messages if m["wake"] or m["events"]]


def _parts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``data``, or a batch of task changes in parts that each fit a notice."""
    changes = data.get("changes")
    if not isinstance(changes, list) or len(orjson.dumps(data)) + 64 <= MOST_BYTES:
        return [data]
    half = len(changes) // 2
    if half == 0:
        return [data]
    return _parts({**data, "changes": changes[:half]}) + _parts({**data, "changes": changes[half:]})
