"""Dispatch through a real server and its agents, watched from the database: a channel's
max_active across agents, fairness between scopes, priority within one, and the leases of an
agent killed mid-transfer."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from dispatch_support import ActiveSampler, TaskDb, add_mock, stamp, submit, wait_finished
from e2e_support import ServerProcess, processes_mentioning, wait_for

Start = Callable[..., ServerProcess]


def wait_agents(server: ServerProcess, count: int) -> dict[str, dict[str, object]]:
    """The local agents by name, once ``count`` of them have registered and reported a pid."""

    def ready() -> dict[str, dict[str, object]] | None:
        found = {a["name"]: a for a in server.cli_json("agents") if a["status"].get("pid")}
        alive = [a for a in found.values() if a["state"] in ("REGISTERED", "ALIVE")]
        return found if len(alive) == count else None

    result: dict[str, dict[str, object]] = wait_for(ready, timeout=60, interval=0.2)
    return result


# --- a channel's max_active holds across agents ----------------------------------------------


def test_a_channel_never_has_more_tasks_active_than_its_max_active(start_server: Start) -> None:
    server = start_server("--agents", "3", "--agent-max-active", "8")
    add_mock(server, "mk", "siteA", time=0.02, files=1000)
    add_mock(server, "sink", "siteB")
    server.cli("channel", "set", "*", "*", "--max-active", "3", check=True)
    channels = server.cli_json("channel", "ls")
    assert [(c["source_site"], c["destination_site"], c["max_active"]) for c in channels] == [
        ("*", "*", 3)
    ]
    wait_agents(server, 3)

    with ActiveSampler(server, period=0.05) as sampler:
        transfer = server.cli_json("submit", "mk:batch", "sink:out", "--tree")
        final = wait_finished(server, transfer["id"], timeout=600)

    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 1000
    assert sampler.busy > 0, f"no ACTIVE task in {sampler.samples} samples: the monitor saw nothing"
    assert sampler.peak <= 3, f"{sampler.peak} tasks ACTIVE at once in a channel of max_active 3"
    with TaskDb(server) as db:
        workers = db.scalar("SELECT count(DISTINCT lease_agent) FROM tasks WHERE state = 'DONE'")
    assert workers >= 2, "one agent did everything: the limit was not shared across agents"


# --- fairness between scopes, priority within one --------------------------------------------


# The objects are small: they travel in chunks (of 64 for alpha's pages of 1,000; of 2 for
# beta's ten, spread over slots, the storages being remote), and each chunk is one fair-share
# turn (docs/small-files.md). Once beta's chunks are queued, the leases alternate 1:1 between
# the scopes, whatever alpha's agents already hold.
@pytest.mark.parametrize(
    "max_active",
    [pytest.param(None, id="default-agents"), pytest.param(16, id="channel-max-active-16")],
)
def test_a_small_scope_is_leased_turn_for_turn_with_a_big_one(
    start_server: Start, max_active: int | None
) -> None:
    server = start_server()
    add_mock(server, "big", "siteA", time=0.005, files=10_000)
    add_mock(server, "small", "siteA", time=0.005, files=10)
    add_mock(server, "sink", "siteB")
    for scope in ("alpha", "beta"):
        server.cli("scope", "set", scope, "--weight", "1", check=True)
    if max_active is not None:
        server.cli("channel", "set", "*", "*", "--max-active", str(max_active), check=True)
    wait_agents(server, 2)

    with TaskDb(server) as db:
        big = submit(server, "big:data", "sink:big", scope="alpha")
        wait_for(lambda: db.done_at(big), interval=0.005)
        small = submit(server, "small:data", "sink:small", scope="beta")
        assert wait_finished(server, small, timeout=60)["status"] == "COMPLETED"
        alpha_done = len(db.done_at(big))
        leases = db.rows(
            "SELECT transfer_id, leased_at FROM tasks WHERE leased_at IS NOT NULL"
            " AND transfer_id IN (?, ?) ORDER BY leased_at",
            big,
            small,
        )

    beta = [stamp(at) for transfer, at in leases if transfer == small]
    assert len(beta) == 5, "beta's ten objects were not spread over five chunks"
    between = [
        at for transfer, at in leases if transfer == big and beta[0] <= stamp(at) <= beta[-1]
    ]
    # 1:1 turns: one of alpha's per chunk of beta's, and one more for each of the two agents
    # whose lease began with alpha's turn.
    assert len(between) <= len(beta) + 2, f"{len(between)} of alpha's chunks among beta's {beta}"
    assert alpha_done < 10_000, "beta finished only after alpha had no more work"


def test_a_priority_5_transfer_is_leased_before_any_further_priority_3_task(
    start_server: Start,
) -> None:
    server = start_server()
    add_mock(server, "backlog", "siteA", time=0.005, files=10_000)
    add_mock(server, "urgent", "siteA", time=0.005, files=5)
    add_mock(server, "sink", "siteB")
    wait_agents(server, 2)
    in_ops = ("submit", "--tree", "--scope", "ops", "--priority")

    with TaskDb(server) as db:
        backlog = server.cli_json(*in_ops, "3", "backlog:data", "sink:backlog")["id"]
        wait_for(
            lambda: db.scalar(
                "SELECT count(*) FROM tasks WHERE transfer_id = ? AND state = 'DONE'", backlog
            ),
            interval=0.005,
        )
        # Hold the queue (leases already given run on) so the urgent tasks are surely seen
        # QUEUED behind it before anything is leased again.
        server.cli("channel", "set", "*", "*", "--state", "drain", check=True)
        urgent = server.cli_json(*in_ops, "5", "urgent:data", "sink:urgent")["id"]

        def urgent_queued() -> set[int] | None:
            """One snapshot: all five urgent objects QUEUED (in one chunk: they are small), and
            the backlog's tasks QUEUED with them (the ones that must not be leased before)."""
            rows = db.rows(
                "SELECT transfer_id, id, objects FROM tasks WHERE state = 'QUEUED'"
                " AND transfer_id IN (?, ?)",
                urgent,
                backlog,
            )
            waiting = {task for transfer, task, _ in rows if transfer == backlog}
            urgent_objects = sum(objects for transfer, _, objects in rows if transfer == urgent)
            return waiting if urgent_objects == 5 else None

        waiting = wait_for(urgent_queued, timeout=30)
        assert waiting, "no priority-3 work was queued: the urgent transfer was behind nothing"
        server.cli("channel", "set", "*", "*", "--state", "active", check=True)
        assert wait_finished(server, urgent, timeout=60)["status"] == "COMPLETED"

        def backlog_leases() -> list[str] | None:
            rows = db.rows("SELECT id, leased_at FROM tasks WHERE transfer_id = ?", backlog)
            later = [leased for task, leased in rows if task in waiting and leased is not None]
            return later if len(later) >= 10 else None  # chunks of 64 objects: 640 objects

        later = wait_for(backlog_leases, timeout=60)
        urgent_leases = [
            r[0] for r in db.rows("SELECT leased_at FROM tasks WHERE transfer_id = ?", urgent)
        ]
        most_leases = db.scalar(
            "SELECT max(attempts) FROM tasks WHERE transfer_id IN (?, ?)", backlog, urgent
        )

    assert most_leases == 1, "a task was leased twice: leased_at no longer tells when it started"
    first_urgent = min(map(stamp, urgent_leases))
    last_urgent = max(map(stamp, urgent_leases))
    jumped = sorted(s for s in map(stamp, later) if s < first_urgent)
    assert not jumped, (
        f"{len(jumped)} priority-3 tasks leased before the priority-5 one: {jumped[:3]}"
    )
    # Strict priority in a scope: the backlog moves again only once every urgent task is leased.
    interleaved = sorted(s for s in map(stamp, later) if s < last_urgent)
    assert not interleaved, f"priority-3 tasks leased between the urgent ones: {interleaved[:3]}"


# --- an agent killed while it holds leases ---------------------------------------------------

LEASE_TTL_S = 5.0


def test_a_killed_agents_tasks_are_requeued_and_done_once_elsewhere(start_server: Start) -> None:
    server = start_server("--lease-ttl", str(LEASE_TTL_S), "--heartbeat", "1")
    add_mock(server, "slow", "siteA", time=0.5, files=48)
    add_mock(server, "sink", "siteB")
    victim = wait_agents(server, 2)["local-1"]
    victim_id, victim_pid = str(victim["id"]), int(victim["status"]["pid"])
    assert victim_pid in processes_mentioning(f"--server {server.url} --name local-1 ")
    transfer = server.cli_json("submit", "slow:data", "sink:out", "--tree")["id"]

    with TaskDb(server) as db:
        held_now = "SELECT id, lease_token FROM tasks WHERE state = 'ACTIVE' AND lease_agent = ?"
        leases = wait_for(lambda: dict(db.rows(held_now, victim_id)))
        held = db.held_objects(victim_id)  # object number → the attempt the victim held
        os.kill(victim_pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def released() -> bool:
            active = db.rows("SELECT id, lease_token FROM tasks WHERE state = 'ACTIVE'")
            return not any(leases.get(task) == lease for task, lease in active)

        wait_for(released, timeout=LEASE_TTL_S + 10, interval=0.02)
        released_after = time.monotonic() - killed_at
        final = wait_finished(server, transfer, timeout=120)

    assert released_after <= LEASE_TTL_S + 5, (
        f"leases released {released_after:.1f} s after the kill"
    )
    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 48
    objects = {o["id"]: o for o in server.cli_json("outcomes", transfer)["objects"]}
    done_twice = [
        o for o in objects.values() if [h["state"] for h in o["history"]].count("DONE") != 1
    ]
    assert done_twice == []
    # Each lease the victim held ends once: lost, or done if its report was already sent.
    ended = {
        (task, h["number"]): h["state"]
        for task, o in objects.items()
        for h in o["history"]
        if h["agent"] == victim_id
    }
    endings = {task: ended.get((task, attempt)) for task, attempt in held.items()}
    assert set(endings.values()) <= {"LOST", "FAILED", "DONE"}, endings
    lost = {task: held[task] for task, state in endings.items() if state in ("LOST", "FAILED")}
    assert lost, f"the killed agent's leases all ended DONE: the kill interrupted nothing {endings}"

    for task, number in lost.items():
        history = objects[task]["history"]
        (lost_try,) = [h for h in history if h["number"] == number]
        assert lost_try["agent"] == victim_id
        assert lost_try["state"] in ("LOST", "FAILED")
        assert "exited" in (lost_try["error"] or "") or "expired" in (lost_try["error"] or "")
        assert [h["state"] for h in history].count("DONE") == 1, history
        last = history[-1]
        assert last["state"] == "DONE", history
        assert last["number"] > number, history
        # Leased again only once the loss was recorded: by a live process, not the killed one.
        assert stamp(last["started_at"]) >= stamp(lost_try["finished_at"]), history

    successor = wait_for(
        lambda: [
            a["status"].get("pid")
            for a in server.cli_json("agents")
            if a["name"] == "local-1" and a["status"].get("pid") not in (None, victim_pid)
        ],
        timeout=60,
        interval=0.5,
    )
    assert successor, "the killed agent was not restarted"
