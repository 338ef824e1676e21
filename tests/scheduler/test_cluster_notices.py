"""Servers of one PostgreSQL database tell each other their wake-ups and events: two
``ClusterNotices`` on a real database, as two servers hold them, and one cut off and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import psycopg
import pytest

from ferry.domain.events import Event, TasksChanged, TransferChanged, event_from_json
from ferry.scheduler.cluster import MOST_BYTES, ClusterNotices, payloads
from ferry.scheduler.events import Lagged
from ferry.scheduler.loop import Wakeups
from ferry.store.sql_watch import libpq_url

DEADLINE_S = 10.0


class Server:
    """One server's wake-ups and its notices, running."""

    def __init__(self, url: str) -> None:
        self.wakeups = Wakeups()
        self.notices = ClusterNotices(url, self.wakeups)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.notices.start()
        self.task = asyncio.create_task(self.notices.run(self.stop))
        await asyncio.wait_for(self.notices.listening.wait(), DEADLINE_S)

    async def close(self) -> None:
        self.notices.stop()
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, DEADLINE_S)


@pytest.fixture
async def servers(postgres_url: str) -> AsyncIterator[tuple[Server, Server]]:
    a, b = Server(postgres_url), Server(postgres_url)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def first_event(server: Server) -> Event:
    async for event in server.wakeups.events.subscribe():
        return event
    raise AssertionError("the stream ended without an event")


async def subscribed(server: Server) -> asyncio.Task[Event]:
    """A subscriber of ``server``'s stream, subscribed before this returns."""
    before = server.wakeups.events.subscribers
    task = asyncio.create_task(first_event(server))
    for _ in range(100):
        if server.wakeups.events.subscribers > before:
            return task
        await asyncio.sleep(0)  # let the subscriber's task reach its queue
    raise AssertionError("the subscriber never subscribed")


async def test_a_wake_up_fired_on_one_server_wakes_the_other(servers) -> None:
    a, b = servers
    due = b.wakeups.due
    pulse = b.wakeups.tasks_available.watch()

    a.wakeups.due.set()
    a.wakeups.tasks_available.fire()

    await asyncio.wait_for(due.wait(), DEADLINE_S)
    await asyncio.wait_for(pulse.wait(), DEADLINE_S)
    assert not a.wakeups.expand.is_set()  # only what was fired


async def test_an_event_published_on_one_server_reaches_the_others_subscribers_once(
    servers,
) -> None:
    a, b = servers
    on_a, on_b = await subscribed(a), await subscribed(b)
    event = TransferChanged(transfer="t1", status="COMPLETED")

    a.wakeups.events.publish(event)

    assert await asyncio.wait_for(on_b, DEADLINE_S) == event
    assert await asyncio.wait_for(on_a, DEADLINE_S) == event
    # a drops its own notice: the next event a sees is b's, not its own again
    again = await subscribed(a)
    b.wakeups.events.publish(TransferChanged(transfer="t2", status="ONGOING"))
    assert (await asyncio.wait_for(again, DEADLINE_S)).transfer == "t2"


async def test_a_server_cut_off_connects_again_and_tells_its_streams_they_missed_events(
    servers, postgres_url: str
) -> None:
    a, b = servers
    stream = await subscribed(b)
    b.notices.listening.clear()
    async with await psycopg.AsyncConnection.connect(libpq_url(postgres_url)) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()"
        )
        await admin.commit()

    assert isinstance(await asyncio.wait_for(stream, DEADLINE_S), Lagged)
    await asyncio.wait_for(b.notices.listening.wait(), DEADLINE_S)
    await asyncio.wait_for(a.notices.listening.wait(), DEADLINE_S)
    assert b.wakeups.due.is_set()  # every wake-up fired once: look again for what was missed
    b.wakeups.finalize.clear()
    a.wakeups.finalize.set()
    await asyncio.wait_for(b.wakeups.finalize.wait(), DEADLINE_S)


def test_a_large_batch_of_task_changes_is_split_into_notices_that_fit() -> None:
    changes = [{"task": n, "state": "DONE", "error": None} for n in range(2_000)]
    events = [TasksChanged(transfer="t1", changes=changes).to_json()]
    at = datetime(2026, 12, 7, tzinfo=UTC).isoformat()
    events.append({"event": "transfer", "at": at, "transfer": "t1", "status": "ONGOING"})

    sent = payloads("node", ["due"], events)

    assert len(sent) > 1
    assert all(len(p.encode()) < MOST_BYTES for p in sent)
    read = [orjson.loads(p) for p in sent]
    assert [m["wake"] for m in read] == [["due"]] + [[]] * (len(sent) - 1)
    told = [event_from_json(e) for m in read for e in m["events"]]
    assert [c["task"] for e in told[:-1] for c in e.changes] == list(range(2_000))
    assert told[-1] == TransferChanged(
        transfer="t1", status="ONGOING", at=datetime.fromisoformat(at)
    )
