"""Fixtures that start real ``ferry server`` processes (and agents by hand), shared by the
end-to-end tests and the reliability suite (tests/chaos): each conftest imports them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_support import Daemons
from e2e_support import ServerProcess, launch, shutdown


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers for one test; each is stopped (and any straggler killed) afterwards."""
    started: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        server = launch(tmp_path / f"work{len(started)}", *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        shutdown(server)


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server (with its two agents) shared by a module's tests."""
    server = launch(tmp_path_factory.mktemp("server") / "work")
    yield server
    shutdown(server)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Servers restarted in the same folder and agents started by hand; all stopped after."""
    started = Daemons(tmp_path)
    yield started
    started.close()
