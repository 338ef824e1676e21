"""A real SQLite store and a clock the tests move by hand, for the loops' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferry.store.sql import SqlStore


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqlStore]:
    """Migrated and bootstrapped."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'ferry.db'}", clock=clock)
    await store.open()
    await store.bootstrap()
    yield store
    await store.close()
