"""``ferry admin`` (issue 24, item 1) with real processes: a remote agent stopped gracefully
(it exits 0 and its leases go back, nothing lost), its log level changed by reconfig, settings
told with their source for the server and an agent, the server stopped, and each command
refused to a user who is not an administrator; every command in the audit trail."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from daemon_support import Daemons, agent_named, ferry_debug_lines, wait_agent, wait_final
from dispatch_support import TaskDb
from e2e_support import ServerProcess, wait_for

KB = 1024


def tree_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def active_leases(db: TaskDb, agent_id: str) -> set[int]:
    rows = db.rows("SELECT id FROM tasks WHERE state = 'ACTIVE' AND lease_agent = ?", agent_id)
    return {task for (task,) in rows}


def admin_json(server: ServerProcess, *args: str) -> Any:
    return server.cli_json("admin", *args, timeout=120)


def test_admin_off_stops_a_remote_agent_gracefully_and_loses_nothing(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--heartbeat", "0.5", "--lease-ttl", "60")
    source = server.cwd / "src"
    source.mkdir()
    for i in range(8):
        (source / f"big{i}.bin").write_bytes(os.urandom(1536 * KB))  # 6 s each at 256K
    expected = tree_of(source)
    first = daemons.agent(
        server, "remote-a", "--token", server.token, "--max-active", "4", "--grace", "1"
    )
    a_id = wait_agent(server, "remote-a", first.pid)["id"]
    submitted = server.cli_json(
        "submit", "--tree", "--bandwidth", "256K", "local:src", "local:dst"
    )["id"]
    with TaskDb(server) as db:
        wait_for(lambda: len(active_leases(db, a_id)) == 8)

        said = admin_json(server, "off", "--agent", "remote-a")

        assert said["daemon"] == "agent remote-a"
        assert said["detail"].startswith("stopping")
        assert first.wait(timeout=30) == 0
        # Its copies were cut short at the end of its grace and given back with the rest:
        # nothing waits for a lease TTL.
        assert active_leases(db, a_id) == set()
    assert agent_named(server, "remote-a") is None  # RETIRED
    secret = server.cli_json("agent-invite", "remote-b")["secret"]
    daemons.agent(server, "remote-b", "--secret", secret, "--max-active", "8")
    final = wait_final(server, submitted, timeout=90)

    assert final["status"] == "COMPLETED"
    assert final["objects"]["done"] == 8
    assert tree_of(server.cwd / "dst") == expected


def test_admin_off_fast_gives_the_leases_back_at_once(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--heartbeat", "0.5", "--lease-ttl", "60")
    source = server.cwd / "src"
    source.mkdir()
    for i in range(2):
        (source / f"big{i}.bin").write_bytes(os.urandom(1536 * KB))
    agent = daemons.agent(
        server, "quick", "--token", server.token, "--max-active", "2", "--grace", "60"
    )
    a_id = wait_agent(server, "quick", agent.pid)["id"]
    server.cli_json("submit", "--tree", "--bandwidth", "64K", "local:src", "local:dst")
    with TaskDb(server) as db:
        wait_for(lambda: len(active_leases(db, a_id)) == 2)

        said = admin_json(server, "off", "--fast", "--agent", "quick")

        assert "every lease" in said["detail"]
        assert agent.wait(timeout=20) == 0  # not the 60 s of its grace
        assert active_leases(db, a_id) == set()


def test_admin_reconfig_applies_an_agents_changed_log_level(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--heartbeat", "0.5")
    config = daemons.root / "agent.toml"
    config.write_text('[agent.log]\nlevel = "INFO"\n')
    agent = daemons.agent(server, "hup", "--token", server.token, "--config", str(config))
    wait_agent(server, "hup", agent.pid)
    assert admin_json(server, "config", "log.level", "--agent", "hup")["value"] == "INFO"
    config.write_text('[agent.log]\nlevel = "DEBUG"\n')

    said = admin_json(server, "reconfig", "--agent", "hup")

    assert said == {
        "daemon": "agent hup",
        "command": "reconfig",
        "detail": "reconfigured",
        "changed": ["log"],
    }
    # Its answer to the reconfig was already logged at the new level.
    wait_for(lambda: any("answered reconfig" in line for line in ferry_debug_lines(agent.log)))
    told = admin_json(server, "config", "log.level", "--agent", "hup")
    assert (told["value"], told["source"]) == ("DEBUG", "file")
    assert agent.process.poll() is None


def test_admin_reconfig_of_the_server_applies_its_file(daemons: Daemons) -> None:
    config = daemons.root / "server.toml"
    config.write_text("[server]\nnotify_retry_s = 10.0\n")
    server = daemons.server("--agents", "0", "--config", str(config))
    config.write_text('[server]\nnotify_retry_s = 2.5\n[server.log]\nlevel = "WARNING"\n')

    said = admin_json(server, "reconfig")

    assert said["changed"] == ["log.level", "notify_retry_s"]
    assert admin_json(server, "config", "notify_retry_s")["value"] == 2.5
    config.write_text("[server]\nnotify_rety_s = 1\n")
    refused = server.cli("admin", "reconfig")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "notify_rety_s: unknown key" in refused.stderr
    assert admin_json(server, "config", "notify_retry_s")["value"] == 2.5  # unchanged


def told(server: ServerProcess, key: str, *agent: str) -> tuple[Any, str]:
    answer = admin_json(server, "config", key, *agent)
    return ("hidden" if answer["hidden"] else answer["value"]), answer["source"]


def test_admin_config_tells_each_value_and_its_source(daemons: Daemons, tmp_path: Path) -> None:
    server_config = tmp_path / "server.toml"
    server_config.write_text("[server]\nnotify_retry_s = 2.5\n")
    server = daemons.server("--agents", "0", "--config", str(server_config), "--grace", "3")
    agent_config = tmp_path / "agent.toml"
    agent_config.write_text("[agent]\nmax_active = 3\n")
    env = {"FERRY_AGENT_GRACE_S": "2"}
    agent = daemons.agent(
        server, "told", "--token", server.token, "--config", str(agent_config), env=env
    )
    wait_agent(server, "told", agent.pid)

    assert told(server, "notify_retry_s") == (2.5, "file")
    assert told(server, "grace_s") == (3.0, "command line")
    assert told(server, "hung_timeout_s") == (60.0, "default")
    assert told(server, "agents") == (0, "command line")
    assert told(server, "metrics_token") == (None, "default")  # not set: nothing to hide
    on_agent = ("--agent", "told")
    assert told(server, "max_active", *on_agent) == (3, "file")
    assert told(server, "grace_s", *on_agent) == (2.0, "environment")
    assert told(server, "name", *on_agent) == ("told", "command line")
    assert told(server, "resume_min_bytes", *on_agent) == (64 * 1024 * 1024, "default")

    plain = server.cli("admin", "config", "max_active", "--agent", "told", check=True)
    assert plain.stdout == "agent told: max_active = 3 (from file)\n"
    wrong = server.cli("admin", "config", "max_activ", "--agent", "told")
    assert wrong.returncode == 1
    assert wrong.stderr == (
        "error: agent told: no setting 'max_activ' in the agent's configuration"
        " (did you mean 'max_active'?)\n"
    )


def test_a_secret_setting_is_set_but_never_told(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--metrics-token", "s3cr3t-metrics-token")

    answer = admin_json(server, "config", "metrics_token")
    plain = server.cli("admin", "config", "metrics_token", check=True).stdout

    assert answer == {
        "daemon": "server",
        "key": "metrics_token",
        "value": None,
        "source": "command line",
        "hidden": True,
    }
    assert plain == "server: metrics_token = (set, hidden) (from command line)\n"


@pytest.mark.parametrize("fast", [False, True])
def test_admin_off_stops_the_server_it_is_sent_to(daemons: Daemons, fast: bool) -> None:
    server = daemons.server("--agents", "1", "--heartbeat", "0.5")
    wait_agent(server, "local-1")

    said = admin_json(server, "off", *(["--fast"] if fast else []))

    assert said["daemon"] == "server"
    assert said["detail"].startswith("stopping")
    assert server.process.wait(timeout=60) == 0
    wait_for(lambda: server.family() == [], timeout=30)  # its local agent stopped too


def test_commands_for_an_agent_not_connected_or_unknown_are_refused(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--heartbeat", "0.5")
    gone = daemons.agent(server, "gone", "--token", server.token)
    wait_agent(server, "gone", gone.pid)
    gone.process.send_signal(signal.SIGTERM)
    assert gone.wait(timeout=30) == 0

    retired = server.cli("admin", "reconfig", "--agent", "gone")
    unknown = server.cli("admin", "off", "--agent", "nobody")
    answer = server.api("POST", "/api/v1/admin/off", json={"agent": "gone"})

    assert retired.returncode == 1
    assert retired.stderr == (
        "error: agent gone is RETIRED, not connected: it cannot take a command\n"
    )
    assert unknown.returncode == 1
    assert unknown.stderr == "error: agent 'nobody' not found\n"
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"


def test_admin_commands_are_refused_to_others_and_audited(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--heartbeat", "0.5")
    agent = daemons.agent(server, "kept", "--token", server.token)
    wait_agent(server, "kept", agent.pid)
    body = {"name": "will", "role": "WRITE", "scopes": ["default"]}
    writer = server.api("POST", "/api/v1/users", json=body).json()["token"]["token"]
    commands = [
        ("reconfig",),
        ("off", "--fast"),
        ("config", "port"),
        ("reconfig", "--agent", "kept"),
        ("off", "--agent", "kept"),
        ("config", "max_active", "--agent", "kept"),
    ]

    for command in commands:
        refused = server.cli("admin", *command, "--token", writer)
        assert refused.returncode == 1, command
        assert refused.stderr.startswith("error: ")
        assert refused.stderr.count("\n") == 1
        assert "ADMINISTRATOR" in refused.stderr, refused.stderr
    direct = server.api(
        "POST", "/api/v1/admin/config", json={"key": "port"}, headers={"Authorization": ""}
    )
    as_writer = server.api(
        "POST",
        "/api/v1/admin/off",
        json={"agent": "kept"},
        headers={"Authorization": f"Bearer {writer}"},
    )
    assert direct.status_code == 401
    assert as_writer.status_code == 403
    assert as_writer.headers["content-type"] == "application/problem+json"
    assert agent.process.poll() is None  # still running: nothing reached it
    admin_json(server, "config", "max_active", "--agent", "kept")

    trail = server.cli_json("audit", "ls", "--limit", "50")
    acts = [
        (r["actor"], r["action"], r["target"], r["status"])
        for r in trail
        if "/admin/" in r["action"]
    ]
    # Refused before its body was read: who and what, not on what.
    assert ("will", "POST /api/v1/admin/off", None, 403) in acts
    assert ("will", "POST /api/v1/admin/reconfig", None, 403) in acts
    assert ("admin", "POST /api/v1/admin/config", "max_active of kept", 200) in acts
    assert json.dumps(acts).count('"will"') == len(commands) + 1


def test_an_agent_that_does_not_answer_is_a_timeout_not_a_hang(daemons: Daemons) -> None:
    server = daemons.server("--agents", "0", "--heartbeat", "0.5")
    frozen = daemons.agent(server, "frozen", "--token", server.token)
    wait_agent(server, "frozen", frozen.pid)
    frozen.process.send_signal(signal.SIGSTOP)  # still ALIVE for the registry: not yet LOST
    try:
        asked = server.cli("admin", "reconfig", "--agent", "frozen", timeout=60)
    finally:
        frozen.process.send_signal(signal.SIGCONT)

    assert asked.returncode == 1
    assert asked.stderr == (
        "error: agent frozen did not answer reconfig within 11 s; it may still carry it out"
        " (an agent older than this server ignores commands)\n"
    )
    assert frozen.process.poll() is None
