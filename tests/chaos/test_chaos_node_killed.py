"""kill -9 of one of three servers on one PostgreSQL database while their agents copy a tree
of real files: the other two complete it, each object copied and recorded once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from chaos_check import end_checks
from chaos_figures import record
from cluster_support import Sampler, cluster, one_value
from daemon_support import wait_final
from e2e_support import ServerProcess, wait_for
from test_small_file_chunks import make_tree

TTL_S = 5.0
FILES = 10_000


@pytest.mark.chaos
def test_a_node_of_three_killed_mid_transfer_leaves_the_others_to_complete_it(
    start_server: Callable[..., ServerProcess], postgres_url: str, tmp_path: Path
) -> None:
    """One of three servers killed (SIGKILL) while its agents hold leases: their objects are
    back in the queue within the lease TTL + 5 s, the other servers' agents copy them;
    COMPLETED, every object DONE once, the tree whole."""
    area = tmp_path / "area"
    make_tree(area / "src", FILES)
    extra = ("--lease-ttl", str(TTL_S), "--heartbeat", "1", "--storage", f"area={area.as_uri()}")
    first, second, third = cluster(start_server, postgres_url, 3, *extra)
    its_own = (f"-{first.port}-1", f"-{first.port}-2")  # local agents: HOST-PORT-N
    killed = [a["id"] for a in first.agents() if a["name"].endswith(its_own)]
    assert len(killed) == 2, first.agents()
    theirs = (
        "SELECT count(*) FROM tasks WHERE state = 'ACTIVE'"
        f" AND lease_agent IN ('{killed[0]}', '{killed[1]}')"
    )

    submitted = second.cli_json("submit", "--tree", "area:src", "area:dst")["id"]
    in_flight = wait_for(lambda: one_value(postgres_url, theirs)[0], timeout=60, interval=0.01)
    first.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.process.wait(30)
    held = Sampler(postgres_url, theirs)
    held.start()
    try:
        wait_for(lambda: held.samples and held.samples[-1][1] == 0, timeout=TTL_S + 30)
        back_s = held.samples[-1][0] - killed_at
        done = wait_final(third, submitted, timeout=300)
        completed_s = time.monotonic() - killed_at
    finally:
        held.stop()

    assert done["status"] == "COMPLETED", done
    ended = end_checks(third, submitted, area / "src", area / "dst", FILES)
    assert back_s <= TTL_S + 5, back_s
    assert ended.requeued > 0, "no object was in flight at the kill: the test did not exercise it"
    record(
        f"kill -9 of one of three servers on PostgreSQL, {FILES:,} objects",
        tasks_held_at_kill=in_flight,
        back_in_queue_s=back_s,
        to_completed_s=completed_s,
        lost=ended.lost,
        requeued=ended.requeued,
        lost_again=ended.lost_again,
    )
