"""The daemons under signals, as an operator sends them: SIGHUP reloads the configuration file,
SIGTERM stops the server without losing work, SIGQUIT gives an agent's leases back at once, a
frozen local agent is replaced, and ``ferry agent --timeout`` ends an idle agent."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from daemon_support import (
    ALIVE,
    Daemons,
    agent_named,
    alive,
    ferry_debug_lines,
    transfer,
    wait_agent,
    wait_final,
)
from dispatch_support import TaskDb, add_mock
from e2e_support import ServerProcess, wait_for

KB = 1024


def config_file(path: Path, *, level: str, logs: Path, storages: dict[str, str]) -> Path:
    """A ``--config`` file: the server's log folder and level, and its declared storages."""
    declared = ", ".join(f'{name} = "{url}"' for name, url in storages.items())
    path.write_text(
        f'[server]\nstorages = {{{declared}}}\n[server.log]\ndir = "{logs}"\nlevel = "{level}"\n',
        encoding="utf-8",
    )
    return path


def server_log(logs: Path) -> str:
    return (logs / "server.log").read_text(encoding="utf-8")


def tree_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def active_leases(db: TaskDb, agent_id: str) -> dict[int, int]:
    """Task id → attempt number of the leases ``agent_id`` holds now."""
    rows = db.rows(
        "SELECT id, attempts FROM tasks WHERE state = 'ACTIVE' AND lease_agent = ?", agent_id
    )
    return dict(rows)


# --- SIGHUP: the configuration file again, a running transfer untouched ---------------------


def start_reloadable(daemons: Daemons) -> tuple[ServerProcess, Path, Path]:
    folder = daemons.root / "hup"
    folder.mkdir()
    logs = folder / "logs"
    config = config_file(folder / "ferry.toml", level="INFO", logs=logs, storages={})
    server = daemons.server("--config", str(config), "--agents", "1", "--heartbeat", "1")
    return server, config, logs


def test_sighup_applies_the_new_level_and_storage_without_dropping_a_running_transfer(
    daemons: Daemons,
) -> None:
    server, config, logs = start_reloadable(daemons)
    add_mock(server, "mk", "siteA", time=1.5, files=12)
    add_mock(server, "sink", "siteB")
    agent_pid = wait_agent(server, "local-1")["status"]["pid"]
    running = server.cli_json("submit", "--tree", "mk:data", "sink:out")["id"]
    with TaskDb(server) as db:
        wait_for(
            lambda: db.scalar(
                "SELECT count(*) FROM tasks WHERE transfer_id = ? AND state = 'ACTIVE'", running
            )
        )
    assert transfer(server, running)["objects"]["done"] < 12, "over before the reload"
    extra = daemons.root / "extra"
    extra.mkdir()
    config_file(config, level="DEBUG", logs=logs, storages={"extra": extra.as_uri()})

    server.process.send_signal(signal.SIGHUP)

    # the storage is declared after the level has been logged, once its row is written
    declared = f"SIGHUP: storage extra declared ({extra.as_uri()})"
    wait_for(lambda: declared in server_log(logs), timeout=10)
    change = next(line for line in server_log(logs).splitlines() if "log.level:" in line)
    assert " INFO ferry.daemon: SIGHUP: log.level: 'INFO' → 'DEBUG'" in change
    storages = {s["name"]: s["url"] for s in server.api("GET", "/api/v1/storages").json()}
    assert storages["extra"] == extra.as_uri()
    (server.cwd / "note.txt").write_text("declared by the file")
    copy = server.cli_json("submit", "local:note.txt", "extra:in")["id"]
    assert wait_final(server, copy, timeout=30)["status"] == "COMPLETED"
    assert (extra / "in" / "note.txt").read_text() == "declared by the file"

    final = wait_final(server, running, timeout=60)
    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 12
    objects = server.cli_json("outcomes", running)["objects"]
    assert [o["attempts"] for o in objects] == [1] * 12, "an object was given back and leased again"
    assert server.process.poll() is None
    assert agent_named(server, "local-1")["status"]["pid"] == agent_pid


def test_sighup_to_debug_level_brings_debug_lines_into_server_log(daemons: Daemons) -> None:
    server, config, logs = start_reloadable(daemons)
    add_mock(server, "mk", "siteA", time=0.1, files=20)
    add_mock(server, "sink", "siteB")
    wait_agent(server, "local-1")
    before = server.cli_json("submit", "--tree", "mk:data", "sink:before")["id"]
    assert wait_final(server, before, timeout=30)["status"] == "COMPLETED"
    assert ferry_debug_lines(logs / "server.log") == []
    config_file(config, level="DEBUG", logs=logs, storages={})

    server.process.send_signal(signal.SIGHUP)

    wait_for(lambda: "SIGHUP: log.level: 'INFO' → 'DEBUG'" in server_log(logs), timeout=10)
    after = server.cli_json("submit", "--tree", "mk:data", "sink:after")["id"]
    assert wait_final(server, after, timeout=30)["status"] == "COMPLETED"
    server.agents()
    wait_for(lambda: ferry_debug_lines(logs / "server.log"), timeout=5)


# --- SIGTERM: the server stops, nothing is lost, a restart finishes the job --------------------

FILES = 500


def make_tree(root: Path) -> dict[str, bytes]:
    """500 files: most of 16 KiB, every 50th of 256 KiB (several seconds at the test's rate)."""
    root.mkdir()
    block = os.urandom(256 * KB)
    for i in range(FILES):
        size = 256 * KB if i % 50 == 0 else 16 * KB
        (root / f"f{i:03d}.bin").write_bytes(i.to_bytes(4, "big") + block[: size - 4])
    return tree_of(root)


def test_sigterm_mid_transfer_loses_nothing_and_a_restart_completes_it(daemons: Daemons) -> None:
    extra = ("--agents", "2", "--grace", "1", "--heartbeat", "1")
    server = daemons.server(*extra)
    expected = make_tree(server.cwd / "src")
    wait_agent(server, "local-1")
    wait_agent(server, "local-2")
    submitted = server.cli_json("submit", "--tree", "--bandwidth", "64K", "local:src", "local:dst")
    wait_for(lambda: transfer(server, submitted["id"])["objects"]["done"] >= 100, interval=0.05)

    assert server.stop(signal.SIGTERM, timeout=40) == 0

    with TaskDb(server) as db:
        states = dict(
            db.rows(
                "SELECT state, count(*) FROM tasks WHERE transfer_id = ? GROUP BY state",
                submitted["id"],
            )
        )
    # Nothing stays leased: an agent leaving gives back even a lease whose reply it dropped.
    assert "ACTIVE" not in states, states
    assert 100 <= states.get("DONE", 0) < FILES, f"not stopped mid-way: {states}"
    assert sum(states.values()) == FILES, states
    assert list((server.cwd / "dst").rglob("*.part")) == []

    restarted = daemons.server(*extra, cwd=server.cwd)
    final = wait_final(restarted, submitted["id"], timeout=90)

    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == FILES
    copied = tree_of(restarted.cwd / "dst")
    assert sorted(copied) == sorted(expected)  # no .part file, nothing missing
    torn = [name for name, data in copied.items() if data != expected[name]]
    assert torn == []


# --- SIGQUIT: an agent gives back every lease at once ------------------------------------------

LEASE_TTL_S = 30


def test_sigquit_gives_an_agents_leases_to_another_agent_in_seconds(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--lease-ttl", str(LEASE_TTL_S))
    source = server.cwd / "src"
    source.mkdir()
    for i in range(8):
        (source / f"big{i}.bin").write_bytes(os.urandom(1536 * KB))  # 6 s at 256K
    expected = tree_of(source)
    # Four copies at a time and four more leased ahead: remote-a gives back both kinds.
    first = daemons.agent(server, "remote-a", "--token", server.token, "--max-active", "4")
    a_id = wait_agent(server, "remote-a", heard=False)["id"]
    # remote-b is running before the copies start, paused so that it leases nothing yet: an
    # agent started after them took longer than a copy on a loaded machine.
    secret = server.cli_json("agent-invite", "remote-b")["secret"]
    second = daemons.agent(server, "remote-b", "--secret", secret, "--max-active", "8")
    b_id = wait_agent(server, "remote-b", heard=False)["id"]
    assert server.api("POST", f"/api/v1/agents/{b_id}/pause").status_code == 200
    submitted = server.cli_json(
        "submit", "--tree", "--bandwidth", "256K", "local:src", "local:dst"
    )["id"]
    with TaskDb(server) as db:
        held = wait_for(lambda: len(leases := active_leases(db, a_id)) == 8 and leases)
        assert active_leases(db, a_id) == held, "remote-a finished a copy before the signal"

        first.process.send_signal(signal.SIGQUIT)
        sent = time.monotonic()
        assert server.api("POST", f"/api/v1/agents/{b_id}/resume").status_code == 200

        def taken_over() -> bool:
            rows = db.rows(
                "SELECT id FROM tasks WHERE lease_agent = ? AND state IN ('ACTIVE', 'DONE')",
                b_id,
            )
            return {task for (task,) in rows} >= set(held)

        wait_for(taken_over, timeout=LEASE_TTL_S + 5, interval=0.02)
        taken_after = time.monotonic() - sent
        assert first.wait(timeout=15) == 0
        final = wait_final(server, submitted, timeout=60)
    history = [h for o in server.cli_json("outcomes", submitted)["objects"] for h in o["history"]]
    ended = Counter(h["state"] for h in history if h["agent"] == a_id)
    redone = Counter(h["state"] for h in history if h["agent"] == b_id)

    assert taken_after < 5, f"remote-b took the tasks {taken_after:.1f} s after the SIGQUIT"
    # The four running copies were stopped and given back (attempts kept); the four not yet
    # started were given back without an attempt.
    assert ended == {"RELEASED": 4}, ended
    assert redone == {"DONE": 8}, redone
    assert second.process.poll() is None
    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 8
    assert tree_of(server.cwd / "dst") == expected


def test_work_queued_after_an_agent_quit_is_not_leased_to_it(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--lease-ttl", str(LEASE_TTL_S), "--heartbeat", "1")
    (server.cwd / "late.txt").write_text("late")
    gone = daemons.agent(server, "remote-a", "--token", server.token)
    # Its first heartbeat comes a second after its first lease request, a long poll (no work).
    a_id = wait_agent(server, "remote-a", gone.pid)["id"]
    gone.process.send_signal(signal.SIGQUIT)
    assert gone.wait(timeout=10) == 0
    submitted = server.cli_json("submit", "local:late.txt", "local:out")["id"]
    secret = server.cli_json("agent-invite", "remote-b")["secret"]
    daemons.agent(server, "remote-b", "--secret", secret)

    with TaskDb(server) as db:
        try:
            final = wait_final(server, submitted, timeout=8)
        finally:
            taken_by_gone = db.scalar(
                "SELECT count(*) FROM tasks WHERE lease_agent = ? AND state = 'ACTIVE'", a_id
            )
    assert taken_by_gone == 0
    assert final["status"] == "COMPLETED"


# --- a frozen local agent: killed and replaced -------------------------------------------------

HUNG_TIMEOUT_S = 5


def test_a_local_agent_frozen_with_sigstop_is_killed_and_replaced(daemons: Daemons) -> None:
    server = daemons.server(
        "--agents", "1", "--heartbeat", "1", "--hung-timeout", str(HUNG_TIMEOUT_S),
        "--agent-lost-after", "60",
    )  # fmt: skip
    # Objects over the small size, each its own task: eight held at once when it freezes.
    add_mock(server, "mk", "siteA", time=3, files=8, size=300_000)
    add_mock(server, "sink", "siteB")
    frozen = wait_agent(server, "local-1")
    pid, agent_id = int(frozen["status"]["pid"]), frozen["id"]
    submitted = server.cli_json("submit", "--tree", "mk:data", "sink:out")["id"]
    with TaskDb(server) as db:
        held = wait_for(lambda: len(leases := active_leases(db, agent_id)) == 8 and leases)

    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()

    try:
        replacement = wait_for(
            lambda: (a := agent_named(server, "local-1")) and a["status"].get("pid") != pid and a,
            timeout=HUNG_TIMEOUT_S + 15,
            interval=0.1,
        )
        replaced_after = time.monotonic() - stopped
        assert not alive(pid), "the frozen agent was replaced but not killed"
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    final = wait_final(server, submitted, timeout=60)
    objects = server.cli_json("outcomes", submitted)["objects"]
    log = server.log.read_text()

    assert replaced_after <= HUNG_TIMEOUT_S + 10, f"replaced after {replaced_after:.1f} s"
    assert replacement["status"]["pid"] != pid
    assert f"child local-1 (pid {pid}): no heartbeat for " in log
    assert "killing and replacing it" in log
    assert "child local-1 exited with status -9 (hung: no heartbeat for" in log
    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 8
    for task in objects:
        history = task["history"]
        assert task["id"] in held, task
        assert [h["state"] for h in history].count("DONE") == 1, history
        assert history[-1]["state"] == "DONE", history
        assert history[-1]["number"] > held[task["id"]], history  # done by the replacement


# --- ferry agent --timeout ---------------------------------------------------------------------


def test_an_agent_with_nothing_to_do_exits_0_after_its_timeout(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0")
    started = time.monotonic()
    idle = daemons.agent(server, "idle", "--token", server.token, "--timeout", "3")

    assert idle.wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    said = idle.log.read_text()
    assert "registered as idle" in said
    assert "nothing to do for 3 s: stopping" in said


def test_an_agent_with_work_stays_until_it_is_done_then_exits_0(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0")
    add_mock(server, "mk", "siteA", time=6, files=2)  # each object longer than the timeout
    add_mock(server, "sink", "siteB")
    submitted = server.cli_json("submit", "--tree", "mk:data", "sink:out")["id"]
    worker = daemons.agent(server, "worker", "--token", server.token, "--timeout", "3")

    final = wait_final(server, submitted, timeout=40)
    assert worker.process.poll() is None, "the agent left before its work was done"
    done_at = time.monotonic()
    assert worker.wait(timeout=20) == 0
    idle_for = time.monotonic() - done_at

    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 2
    assert idle_for < 10, f"exited {idle_for:.1f} s after its work was done"


def test_sighup_makes_an_agent_read_its_configuration_again(daemons: Daemons) -> None:
    """DaemonCore's reconfig on an agent: its log level changes at once, a setting that needs a
    restart is named, and the agent works on (it used to die: no handler for the signal)."""
    server = daemons.server("--agents", "0")
    config = daemons.root / "agent.toml"
    config.write_text('[agent]\nmax_active = 4\n[agent.log]\nlevel = "INFO"\n')
    agent = daemons.agent(server, "hup", "--token", server.token, "--config", str(config))
    wait_agent(server, "hup", agent.pid)
    config.write_text('[agent]\nmax_active = 6\n[agent.log]\nlevel = "WARNING"\n')

    def said(text: str, times: int) -> Callable[[], bool]:
        return lambda: agent.log.read_text().count(text) == times

    changed = "changed, applied at the next start: max_active"
    agent.process.send_signal(signal.SIGHUP)
    wait_for(said(changed, 1))
    agent.process.send_signal(signal.SIGHUP)  # at WARNING now: its INFO line is not written
    wait_for(said(changed, 2))

    assert said("SIGHUP: reading the configuration again", 1)()
    assert agent.process.poll() is None
    assert wait_agent(server, "hup", agent.pid)["state"] in ALIVE
