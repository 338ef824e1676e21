"""An agent frozen (SIGSTOP) for longer than the lease TTL, or killed (SIGKILL), while it copies
a tree of small files beside another agent: its leases lapse, the other agent copies its
objects, and nothing it says once thawed changes what was recorded."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from chaos_agents import copying, idle_since, reported_late, start_agent
from chaos_check import end_checks, outcomes
from chaos_figures import record
from daemon_support import FINAL, AgentProcess, Daemons, transfer, wait_final
from e2e_support import ServerProcess, wait_for
from test_small_file_chunks import make_tree

TTL_S = 3.0
TIMING = ("--lease-ttl", str(TTL_S), "--heartbeat", "0.5", "--agents", "0")

SIZES = [pytest.param(10_000, marks=pytest.mark.chaos, id="10000"), pytest.param(2_000, id="2000")]


def submit_and_hit(
    daemons: Daemons, files: int, hit: signal.Signals
) -> tuple[ServerProcess, AgentProcess, dict[str, Any]]:
    """A server, two agents and a tree; ``hit`` sent to one agent while it holds objects (as
    the server sees once it is hit: a frozen agent that had reported all it held is thawed and
    frozen again once it holds more). A tree of small files travels in a few chunks: when the
    transfer ends before the victim is caught holding one, the tree is sent again to another
    folder, up to five times."""
    server = daemons.server(*TIMING)
    make_tree(server.cwd / "src", files)
    victim, victim_id = start_agent(daemons, server, "victim")
    start_agent(daemons, server, "other")
    for attempt in range(1, 6):
        destination = "dst" if attempt == 1 else f"dst-{attempt}"
        submitted = server.cli_json("submit", "--tree", "local:src", f"local:{destination}")["id"]
        caught = hit_while_holding(server, submitted, victim, victim_id, hit)
        if caught is not None:
            held, hit_at = caught
            run = {"id": submitted, "held": held, "hit_at": hit_at, "victim": victim_id}
            return server, victim, run | {"destination": server.cwd / destination}
    raise AssertionError("in five transfers the victim was never hit holding an object")


def hit_while_holding(
    server: ServerProcess, transfer_id: str, victim: AgentProcess, victim_id: str, hit: int
) -> tuple[int, float] | None:
    """Send ``hit`` once the victim holds objects of the transfer: how many it held and when;
    None when the transfer ended first."""
    while True:
        seen = wait_for(
            lambda: copying(server, transfer_id, victim_id) or ended(server, transfer_id),
            timeout=60,
            interval=0.01,
        )
        if seen == "ended":
            return None
        os.kill(victim.pid, hit)
        hit_at = time.monotonic()
        held = copying(server, transfer_id, victim_id)
        if held or hit != signal.SIGSTOP:
            return held, hit_at
        os.kill(victim.pid, signal.SIGCONT)


def ended(server: ServerProcess, transfer_id: str) -> str | None:
    return "ended" if transfer(server, transfer_id)["status"] in FINAL else None


@pytest.mark.parametrize("files", SIZES)
def test_an_agent_frozen_past_its_lease_ttl_changes_nothing_once_thawed(
    daemons: Daemons, files: int
) -> None:
    """An agent stopped (SIGSTOP) past the lease TTL, holding objects: its leases lapse, the
    other agent copies them, COMPLETED; continued (SIGCONT), it reports how what it held ended
    and the server ignores it: the outcomes stay as they were, every object DONE once, the tree
    whole, no ``.part`` left by its copies."""
    server, victim, run = submit_and_hit(daemons, files, signal.SIGSTOP)
    try:
        done = wait_final(server, run["id"], timeout=300)
        completed_s = time.monotonic() - run["hit_at"]
        recorded = outcomes(server, run["id"])
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    thawed_at = datetime.now(UTC)

    # Holding nothing once heard from: what it held was reported, and the server answered.
    thawed = wait_for(lambda: idle_since(server, "victim", thawed_at), timeout=60, interval=0.1)
    assert done["status"] == "COMPLETED", done
    ended = end_checks(server, run["id"], server.cwd / "src", run["destination"], files)
    assert outcomes(server, run["id"]) == recorded  # its late reports changed nothing
    assert ended.lost > 0, "the frozen agent's leases never lapsed: the test did not exercise it"
    assert victim.process.poll() is None
    late = reported_late(thawed, run["victim"], recorded)
    record(
        f"an agent frozen (SIGSTOP) past the lease TTL, {files:,} objects",
        held_when_frozen=run["held"],
        to_completed_s=completed_s,
        lost=ended.lost,
        requeued=ended.requeued,
        lost_again=ended.lost_again,
        done_reported_late=late,
    )


@pytest.mark.chaos  # test_small_file_chunks kills a local agent mid-transfer in `make test`
def test_an_agent_killed_mid_transfer_leaves_its_objects_to_the_other(daemons: Daemons) -> None:
    """An agent killed (SIGKILL) holding objects: its leases lapse after the TTL and the other
    agent copies them; COMPLETED, every object DONE once, the tree whole."""
    files = 10_000
    server, _, run = submit_and_hit(daemons, files, signal.SIGKILL)
    done = wait_final(server, run["id"], timeout=300)
    completed_s = time.monotonic() - run["hit_at"]

    assert done["status"] == "COMPLETED", done
    ended = end_checks(server, run["id"], server.cwd / "src", run["destination"], files)
    assert ended.lost > 0, "the killed agent held no lease: the test did not exercise it"
    record(
        f"an agent killed (SIGKILL) mid-transfer, {files:,} objects",
        held_when_killed=run["held"],
        to_completed_s=completed_s,
        lost=ended.lost,
        requeued=ended.requeued,
        lost_again=ended.lost_again,
    )
