"""An agent's own bandwidth timetable (issue 24, item 4, per server): the rate holds for all
the agent's copies together, changes as the clock passes an entry (seen within 5 s), and a
timetable changed in the agent's file is applied by SIGHUP, without a restart.

A remote agent copies two files of 24 MiB at once; its rate is measured outside Ferry, as the
bytes its process wrote (``rate_support``). Its timetable holds 1 MiB/s until a time of day a
few seconds ahead, then 4 MiB/s; a few seconds after that its file says ``off`` and it is sent
SIGHUP, and what is left moves at once."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from daemon_support import Daemons
from e2e_support import ServerProcess, wait_for
from rate_support import bytes_written, rate_between, time_of_day

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
SLOW, FAST = 1 * MB, 4 * MB
SWITCH_AFTER_S = 15
SEEN_WITHIN_S = 5
FAST_FOR_S = 4


def status(server: ServerProcess, transfer_id: str) -> str:
    return str(server.api("GET", f"/api/v1/transfers/{transfer_id}").json()["status"])


def test_an_agents_timetable_holds_its_copies_together_and_changes_with_the_clock_and_sighup(
    daemons: Daemons,
) -> None:
    server = daemons.server("--agents", "0")
    files = {name: os.urandom(24 * MB) for name in ("a.bin", "b.bin")}
    (server.cwd / "in").mkdir()
    for name, data in files.items():
        (server.cwd / "in" / name).write_bytes(data)
    now = datetime.now(UTC)
    switch = now + timedelta(seconds=SWITCH_AFTER_S)
    config = daemons.root / "agent.toml"
    timetable = f"{time_of_day(now - timedelta(minutes=1))},1M; {time_of_day(switch)},4M"
    config.write_text(f'[agent]\nbandwidth_timetable = "{timetable}"\n')
    agent = daemons.agent(server, "capped", "--token", server.token, "--config", str(config))
    wait_for(
        lambda: [a for a in server.agents() if a["status"].get("pid") == agent.pid], timeout=60
    )
    request = {"sources": ["local:in"], "destination": "local:out", "kind": "tree"}
    submitted = server.api("POST", "/api/v1/transfers", json=request).json()
    at = int(switch.timestamp())  # the entry names whole seconds
    samples = bytes_written(
        [agent.pid], lambda: time.time() > at + SEEN_WITHIN_S + FAST_FOR_S, time.time() + 60
    )
    config.write_text('[agent]\nbandwidth_timetable = "off"\n')
    agent.process.send_signal(signal.SIGHUP)
    hup = time.time()
    wait_for(lambda: status(server, submitted["id"]) == "COMPLETED", timeout=60, interval=0.1)
    completed = time.time()

    moving = [t for t, n in samples if n > SLOW // 4]
    assert moving, "nothing was copied"
    assert moving[0] < at - 3, "the copies started too late to be measured"
    # Two copies at once, 1 MiB/s between them (each alone would have taken it all).
    assert rate_between(samples, moving[0], at - 0.5) < 1.3 * SLOW
    fast_from = next(
        t for t, _ in samples if t > at and rate_between(samples, t - 1, t) > 0.75 * FAST
    )
    assert fast_from - at <= SEEN_WITHIN_S
    assert rate_between(samples, fast_from, fast_from + 2) < 1.3 * FAST
    # What was left (some 15 MiB, four seconds at 4 MiB/s) moved at once after the SIGHUP.
    assert completed - hup < 3
    for name, data in files.items():
        copied = (server.cwd / "out" / name).read_bytes()
        assert hashlib.sha256(copied).digest() == hashlib.sha256(data).digest()
    told = server.cli_json("admin", "config", "bandwidth_timetable", "--agent", "capped")
    assert (told["value"], told["source"]) == ("off", "file")
