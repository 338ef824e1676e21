"""A singleton loop's lock on PostgreSQL (issue 22, item 3): a live holder keeps it however
long its turn; one that stops answering with its connection open loses it once its session
has been idle for ``SINGLETON_IDLE_S``, so another server takes the loop over. The bound and
the keeper's period are made short here; the server's are 15 s and 5 s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import OperationalError

from ferry.store import sql_base
from ferry.store.sql import SqlStore

IDLE_S = 2
DEADLINE_S = 20.0


@pytest.fixture
async def two_servers(postgres_url: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    first, second = SqlStore(postgres_url), SqlStore(postgres_url)
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


async def taken_by(store: SqlStore, name: str) -> bool:
    async with store.singleton(name) as mine:
        return mine


async def test_a_live_holder_keeps_the_lock_through_a_turn_longer_than_the_bound(
    two_servers: tuple[SqlStore, SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_servers
    monkeypatch.setattr(sql_base, "SINGLETON_IDLE_S", IDLE_S)
    monkeypatch.setattr(sql_base, "SINGLETON_KEEP_S", IDLE_S / 4)
    async with first.singleton("expand") as mine:
        assert mine
        await asyncio.sleep(IDLE_S * 2)  # the turn: twice as long as an idle session may be
        assert not await taken_by(second, "expand")
    assert await taken_by(second, "expand")  # released at the turn's end


async def test_a_holder_that_stops_answering_loses_the_lock_to_another_server(
    two_servers: tuple[SqlStore, SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder's keeper never runs again (as in a frozen process): PostgreSQL ends its idle
    session and the lock with it."""
    first, second = two_servers
    monkeypatch.setattr(sql_base, "SINGLETON_IDLE_S", IDLE_S)
    monkeypatch.setattr(sql_base, "SINGLETON_KEEP_S", 3600.0)
    holding = first.singleton("finalize")
    assert await holding.__aenter__()
    stopped_at = time.monotonic()
    assert not await taken_by(second, "finalize")

    while not await taken_by(second, "finalize"):
        assert time.monotonic() - stopped_at < DEADLINE_S, "the lock was never released"
        await asyncio.sleep(0.2)
    assert time.monotonic() - stopped_at >= IDLE_S
    with pytest.raises(OperationalError):  # the frozen holder's session is gone
        await holding.__aexit__(None, None, None)


async def test_servers_that_start_together_on_an_empty_database_migrate_it_once(
    postgres_url: str,
) -> None:
    """Their migrations take turns: the second finds the schema at its head."""
    stores = [SqlStore(postgres_url) for _ in range(3)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        for store in stores:
            await store.check_writable()
    finally:
        for store in stores:
            await store.close()
