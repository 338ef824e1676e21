"""A real store, on SQLite in a temporary folder and on a throwaway PostgreSQL database, with a
clock the tests move by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ferry.domain.transfers import Run, Transfer, TransferOptions
from ferry.store.sql import SqlStore

from .factories import new_transfer, planned, register


class FakeClock:
    """Timezone-aware UTC time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend, tmp_path) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite+aiosqlite:///{tmp_path / 'ferry.db'}"


@pytest.fixture
async def fresh_store(database_url, clock) -> AsyncIterator[SqlStore]:
    """Migrated, not bootstrapped."""
    store = SqlStore(database_url, clock=clock)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(fresh_store) -> SqlStore:
    """Migrated and bootstrapped: the default scope and the administrator exist."""
    await fresh_store.bootstrap()
    return fresh_store


@dataclass
class Started:
    transfer: Transfer
    run: Run


@pytest.fixture
def submit(store, clock):
    async def submit(**kwargs) -> Transfer:
        kwargs.setdefault("next_run_at", clock.now)
        transfer, _created = await store.create_transfer(new_transfer(**kwargs))
        return transfer

    return submit


@pytest.fixture
def start(store, clock, submit):
    """A transfer claimed by the due loop with ``tasks`` tasks, expanded: ready to lease."""

    async def start(tasks: int = 1, *, options: TransferOptions | None = None) -> Started:
        transfer = await submit(options=options)
        [run] = await store.claim_due_transfers(clock.now, 100)
        assert run.transfer_id == transfer.id
        transfer = await store.get_transfer(transfer.id)
        await store.add_tasks(transfer, run.number, planned(tasks))
        await store.mark_expanded(transfer.id, run.number)
        return Started(transfer, run)

    return start


@pytest.fixture
async def agent_id(store) -> str:
    return await register(store, "agent-1")


@pytest.fixture
def register_agent(store):
    async def register_agent(name: str) -> str:
        return await register(store, name)

    return register_agent
