"""Waiting for a transfer: the clients follow its event stream, so that ``wait()`` returns as
the final status is published, not at the next poll."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from e2e_support import ServerProcess

from ferry.api.schemas import TransferPublic
from ferry.client import AsyncClient, Client

ENDS_WITHIN_S = 0.3  # the aim is 50 ms; the margin is for a loaded machine


def add_mock_storages(server: ServerProcess, *, seconds_each: float, files: int) -> None:
    flags = ["--option", "size=1000", "--option", f"time={seconds_each}"]
    flags += ["--option", f"files={files}"]
    server.cli("storage", "add", "slow", "mock://slow", *flags, check=True)
    server.cli("storage", "add", "sink", "mock://sink", check=True)


def gap_after_end(client: Client, transfer: TransferPublic, returned_at: datetime) -> float:
    """Seconds between the end of the transfer's run (as the server recorded it) and
    ``returned_at``."""
    ended_at = client.runs(transfer.id)[-1].finished_at
    assert ended_at is not None
    return (returned_at - ended_at).total_seconds()


def test_wait_returns_as_the_transfer_finishes(start_server) -> None:
    server: ServerProcess = start_server()
    # ends about 2.9 s after it is submitted: between two of the old back-off's polls
    # (at 2.6 and 3.6 s), so a poller saw it end about 0.7 s late
    add_mock_storages(server, seconds_each=2.8, files=2)
    with Client(server.url, server.token) as client:
        moving = client.submit(["slow:data"], "sink:out", tree=True)
        finished = client.wait(moving.id, timeout=60)
        returned_at = datetime.now(UTC)
        assert finished.status == "COMPLETED"
        gap = gap_after_end(client, moving, returned_at)
        print(f"sync wait() returned {gap * 1000:.0f} ms after the run ended")
        assert 0 <= gap < ENDS_WITHIN_S

        async def wait_async(transfer_id: str) -> tuple[TransferPublic, datetime]:
            async with AsyncClient(server.url, server.token) as asynchronous:
                found = await asynchronous.wait(transfer_id, timeout=60)
                return found, datetime.now(UTC)

        moving = client.submit(["slow:data"], "sink:again", tree=True)
        finished, returned_at = asyncio.run(wait_async(moving.id))
        assert finished.status == "COMPLETED"
        gap = gap_after_end(client, moving, returned_at)
        print(f"async wait() returned {gap * 1000:.0f} ms after the run ended")
        assert 0 <= gap < ENDS_WITHIN_S


def test_wait_reports_progress_and_keeps_its_timeout(start_server) -> None:
    server: ServerProcess = start_server()
    add_mock_storages(server, seconds_each=2.5, files=2)
    events: list[str] = []
    with Client(server.url, server.token) as client:
        moving = client.submit(["slow:data"], "sink:out", tree=True)
        finished = client.wait(moving.id, timeout=60, on_event=lambda e: events.append(e["event"]))
        assert finished.status == "COMPLETED"
        assert "progress" in events
        assert events[-1] == "transfer"

        someday = {"kind": "at", "at": "2099-01-01T00:00:00Z"}
        later = client.submit(["slow:x"], "sink:y", schedule=someday)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="still STANDBY"):
            client.wait(later.id, timeout=0.5)
        assert time.monotonic() - started < 5
