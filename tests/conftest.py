"""Fixtures every test folder may use: a PostgreSQL cluster per session (see pg_server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from pg_server import PostgresCluster, postgres_cluster

# Property tests check what holds, not how fast: a deadline per example failed them on a loaded
# machine (a chunk packing example took 283 ms against hypothesis's default of 200).
settings.register_profile("ferry", deadline=None)
settings.load_profile("ferry")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    """An empty database of this test's own (SQLAlchemy URL), dropped afterwards."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)
