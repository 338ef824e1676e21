"""An agent cut off from its server by a network partition while it copies a tree of small
files, then reconnected: the server reaps its leases, its local agent copies those objects, and
what the cut-off agent reports once it is reconnected records no second copy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from chaos_agents import copying, heard_since, idle_since, reported_late, start_agent
from chaos_check import end_checks, outcomes
from chaos_figures import record
from daemon_support import Daemons, wait_final
from e2e_support import wait_for
from network_namespaces import Network, partitionable_network
from test_small_file_chunks import make_tree

TTL_S = 3.0
FILES = 10_000


@pytest.fixture
def network() -> Iterator[Network]:
    with partitionable_network() as made:
        yield made


@pytest.mark.chaos
def test_an_agent_cut_off_past_its_lease_ttl_records_no_second_copy_once_healed(
    network: Network, daemons: Daemons
) -> None:
    """The link between a remote agent holding objects and its server dropped for longer than
    the lease TTL, then up again: its objects are back in the queue and the server's local agent
    copies them; once healed, the agent is heard from again; COMPLETED, every object DONE once,
    the tree whole, no ``.part`` left."""
    timing = ("--lease-ttl", str(TTL_S), "--heartbeat", "0.5", "--agents", "1")
    server = daemons.server(*timing, netns=(network.server_ns, network.server_address))
    make_tree(server.cwd / "src", FILES)
    cut_off, cut_off_id = start_agent(daemons, server, "cut-off", netns=network.agent_ns)
    submitted = server.cli_json("submit", "--tree", "local:src", "local:dst")["id"]
    held = wait_for(lambda: copying(server, submitted, cut_off_id), timeout=60, interval=0.01)

    network.cut()
    cut_at = time.monotonic()
    wait_for(lambda: copying(server, submitted, cut_off_id) == 0, timeout=TTL_S + 30)
    reaped_s = time.monotonic() - cut_at
    network.heal()
    healed_at = datetime.now(UTC)

    wait_for(lambda: heard_since(server, "cut-off", healed_at), timeout=60, interval=0.1)
    heard_s = time.monotonic() - cut_at
    done = wait_final(server, submitted, timeout=300)
    completed_s = time.monotonic() - cut_at
    idle = wait_for(lambda: idle_since(server, "cut-off", healed_at), timeout=60, interval=0.1)

    assert done["status"] == "COMPLETED", done
    ended = end_checks(server, submitted, server.cwd / "src", server.cwd / "dst", FILES)
    assert ended.lost > 0, "the cut-off agent's leases never lapsed: the test did not exercise it"
    assert cut_off.process.poll() is None
    late = reported_late(idle, cut_off_id, outcomes(server, submitted))
    record(
        f"an agent cut off from its server (network partition) past the lease TTL, {FILES:,} "
        "objects",
        held_when_cut=held,
        back_in_queue_s=reaped_s,
        heard_again_s=heard_s,
        to_completed_s=completed_s,
        lost=ended.lost,
        requeued=ended.requeued,
        lost_again=ended.lost_again,
        done_reported_late=late,
    )
