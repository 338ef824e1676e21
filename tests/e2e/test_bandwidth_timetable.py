"""A channel's bandwidth timetable (issue 24, item 4) through a real server and its agents: a
rate the timetable changes while a copy runs is the copy's measured rate within 5 s, without a
restart, and `ferry channel set|ls` show the timetable and the rate in force.

The rate is measured outside Ferry: the bytes the agents' processes have written (the kernel's
``wchar`` in /proc/PID/io; a local copy writes to an unnamed file, so there is no file to
watch), sampled every 50 ms. The timetable's change is set a few seconds ahead of the server's clock
(entries may name seconds), so the test waits for a time of day, not for a sleep to pass."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import ServerProcess, launch, shutdown, wait_for
from rate_support import bytes_written, rate_between, time_of_day

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
SLOW, FAST = 1 * MB, 4 * MB
SIZE = 48 * MB
SWITCH_AFTER_S = 15
SEEN_WITHIN_S = 5


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = launch(tmp_path / "work")
    yield server
    shutdown(server)


def status(server: ServerProcess, transfer_id: str) -> str:
    return str(server.api("GET", f"/api/v1/transfers/{transfer_id}").json()["status"])


def agent_pids(server: ServerProcess) -> list[int] | None:
    """The local agents' processes, once both have sent a heartbeat (it carries the pid)."""
    pids = [agent.get("status", {}).get("pid") for agent in server.agents()]
    return pids if len(pids) == 2 and all(pids) else None


def test_a_timetable_changes_the_rate_of_a_running_copy_within_5_s(server: ServerProcess) -> None:
    (server.cwd / "in").mkdir()
    (server.cwd / "out").mkdir()
    data = os.urandom(SIZE)
    (server.cwd / "in" / "big.bin").write_bytes(data)
    pids = wait_for(lambda: agent_pids(server), timeout=90)
    now = datetime.now(UTC)
    switch = now + timedelta(seconds=SWITCH_AFTER_S)
    timetable = f"{time_of_day(now - timedelta(minutes=1))},1M; {time_of_day(switch)},4M"
    # Through the API, not the command line: its start-up would eat into the seconds ahead.
    shown = server.api("PUT", "/api/v1/channels/*/*", json={"bandwidth_timetable": timetable})
    assert shown.json()["bandwidth_now"] == SLOW, shown.text
    assert datetime.fromisoformat(shown.json()["next_change"]).timestamp() == pytest.approx(
        int(switch.timestamp()), abs=1
    )
    request = {"sources": ["local:in/big.bin"], "destination": "local:out"}
    submitted = server.api("POST", "/api/v1/transfers", json=request).json()
    samples = bytes_written(
        pids, lambda: status(server, submitted["id"]) == "COMPLETED", time.time() + 60
    )

    at = int(switch.timestamp())  # the entry names whole seconds
    moving = [t for t, n in samples if n > SLOW // 4]  # beyond the agents' requests
    assert moving, "nothing was copied"
    assert moving[0] < at - 2, "the copy started too late to be measured"
    assert rate_between(samples, moving[0], at - 0.5) < 1.3 * SLOW
    fast_from = next(
        t for t, _ in samples if t > at and rate_between(samples, t - 1, t) > 0.75 * FAST
    )
    assert fast_from - at <= SEEN_WITHIN_S
    assert rate_between(samples, fast_from, fast_from + 2) < 1.3 * FAST
    assert status(server, submitted["id"]) == "COMPLETED"
    copied = (server.cwd / "out" / "big.bin").read_bytes()
    assert hashlib.sha256(copied).digest() == hashlib.sha256(data).digest()


def test_channel_ls_shows_the_timetable_and_the_rate_in_force(server: ServerProcess) -> None:
    server.cli(
        "channel",
        "set",
        "siteA",
        "*",
        "--bandwidth-timetable",
        "Mon-Fri 08:00,50M; 19:00,off",
        "--timezone",
        "Europe/Rome",
        check=True,
    )
    [channel] = server.cli_json("channel", "ls")
    assert channel["bandwidth_timetable"] == "Mon-Fri 08:00,50M; 19:00,off"
    assert channel["timezone"] == "Europe/Rome"
    assert channel["bandwidth"] is None
    assert channel["bandwidth_now"] in (None, 50 * MB)
    assert channel["next_change"] is not None
    table = server.cli("channel", "ls", check=True).stdout
    assert "Mon-Fri 08:00,50M; 19:00,off (Europe/Rome)" in " ".join(table.split())


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--bandwidth-timetable", "Mon 25:00,1M"], "no such time of day"),
        (["--bandwidth-timetable", "08:00,1M", "--timezone", "Mars/Olympus"], "not a time zone"),
        (["--bandwidth-timetable", "08:00,1M", "--bandwidth", "1M"], "not both"),
    ],
)
def test_a_wrong_timetable_is_refused_in_one_line(
    server: ServerProcess, options: list[str], says: str
) -> None:
    result = server.cli("channel", "set", "*", "*", *options)
    assert result.returncode != 0
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    response = server.api(
        "PUT", "/api/v1/channels/*/*", json={"bandwidth_timetable": "Funday 08:00,1M"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert server.cli_json("channel", "ls") == []
