"""kill -9 of a server on SQLite while its agents copy a tree of small files: started again on
the same database, it completes the transfer, each object copied and recorded once."""

from __future__ import annotations

import signal
import time

import pytest
from chaos_check import end_checks
from chaos_figures import record
from daemon_support import Daemons, transfer, wait_final
from e2e_support import wait_for
from test_small_file_chunks import make_tree

TTL_S = 3.0
TIMING = ("--lease-ttl", str(TTL_S), "--heartbeat", "0.5", "--grace", "1")


@pytest.mark.parametrize(
    ("files", "bandwidth"),
    [
        pytest.param(10_000, None, marks=pytest.mark.chaos, id="10000"),
        # Fewer objects, each slowed down, so that the kill still finds some in flight.
        pytest.param(1_000, "20K", id="1000"),
    ],
)
def test_a_server_killed_mid_transfer_completes_it_after_its_restart(
    daemons: Daemons, files: int, bandwidth: str | None
) -> None:
    """The server killed (SIGKILL) with objects in flight and started again on its SQLite
    file: its agents' leases lapse and their objects are copied again; COMPLETED, every object
    DONE once, the tree whole."""
    server = daemons.server(*TIMING)
    make_tree(server.cwd / "src", files)
    slowed = ("--bandwidth", bandwidth) if bandwidth else ()
    submitted = server.cli_json("submit", "--tree", *slowed, "local:src", "local:dst")["id"]
    done_at_kill = wait_for(
        lambda: (n := transfer(server, submitted)["objects"]["done"]) > 0 and n, interval=0.01
    )
    server.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    server.process.wait(30)

    again = daemons.server(*TIMING, cwd=server.cwd)
    restarted_s = time.monotonic() - killed_at
    done = wait_final(again, submitted, timeout=300)
    completed_s = time.monotonic() - killed_at

    assert done["status"] == "COMPLETED", done
    ended = end_checks(again, submitted, server.cwd / "src", server.cwd / "dst", files)
    assert done_at_kill < files, "the transfer ended before the kill: nothing was in flight"
    assert ended.requeued > 0, "no object was in flight at the kill: the test did not exercise it"
    record(
        f"kill -9 of the server on SQLite, {files:,} objects",
        done_at_kill=done_at_kill,
        restart_s=restarted_s,
        to_completed_s=completed_s,
        lost=ended.lost,
        requeued=ended.requeued,
        lost_again=ended.lost_again,
    )
