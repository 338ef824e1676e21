"""The daemon core with real processes: ``ferry server --config`` refusing a bad file, its log
file rotating at the configured size, SIGHUP, and remote agents registering with one-time
secrets from ``ferry agent-invite``."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import FERRY, ServerProcess, free_port, launch, shutdown, wait_for

MAX_BYTES = 2048


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}


@pytest.fixture(scope="module")
def logged_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without local agents whose [server.log] logs at DEBUG to a small rotating file."""
    root = tmp_path_factory.mktemp("daemon-core")
    config = root / "ferry.toml"
    config.write_text(
        f"""[server.log]
dir = "{root / "logs"}"
level = "DEBUG"
max_bytes = {MAX_BYTES}
backups = 2
"""
    )
    server = launch(root / "work", "--agents", "0", "--config", str(config))
    yield server
    shutdown(server)


def logs(server: ServerProcess) -> Path:
    return server.cwd.parent / "logs"


def invite(server: ServerProcess, name: str) -> dict[str, str]:
    response = server.api("POST", "/api/v1/agents/invite", json={"name": name, "ttl_s": 600})
    assert response.status_code == 201, response.text
    return dict(response.json())


def run_agent(
    server: ServerProcess, cwd: Path, name: str, secret: str
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    command = [*FERRY, "agent", "--server", server.url, "--name", name, "--secret", secret]
    command += ["--timeout", "0.3", "--log-dir", str(cwd / "logs")]
    return subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60
    )


def test_agent_invite_prints_a_one_time_secret_as_json(logged_server: ServerProcess) -> None:
    before = datetime.now(UTC)
    invitation = logged_server.cli_json("agent-invite", "edge-json", "--ttl", "30m")
    assert set(invitation) == {"secret", "name", "expires_at", "command"}
    assert invitation["command"] == (
        f"FERRY_AGENT_SECRET={invitation['secret']} ferry agent --server {logged_server.url}"
        " --name edge-json"
    )
    assert invitation["name"] == "edge-json"
    assert len(invitation["secret"]) >= 32
    expires = datetime.fromisoformat(invitation["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(minutes=29) < expires < before + timedelta(minutes=31)
    anonymous = logged_server.cli("agent-invite", "edge-json", "--token", "not-a-token")
    assert anonymous.returncode == 1
    assert "secret" not in anonymous.stdout


def test_a_secret_registers_its_agent_once(logged_server: ServerProcess, tmp_path: Path) -> None:
    secret = invite(logged_server, "edge-1")["secret"]
    first = run_agent(logged_server, tmp_path, "edge-1", secret)
    assert first.returncode == 0, first.stderr
    assert "registered as edge-1" in first.stderr
    assert "edge-1" in [agent["name"] for agent in logged_server.agents()]

    again = run_agent(logged_server, tmp_path, "edge-1", secret)
    assert again.returncode == 1
    refusal = "registration of agent 'edge-1' refused: secret already used"
    assert refusal in again.stderr
    assert refusal in (tmp_path / "logs" / "agent-edge-1.log").read_text()
    for text in (first.stderr, again.stderr, (tmp_path / "logs" / "agent-edge-1.log").read_text()):
        assert secret not in text


def test_an_agent_keeps_its_token_and_restarts_without_a_new_invitation(
    logged_server: ServerProcess, tmp_path: Path
) -> None:
    """Issue 19: a remote agent needed a new invitation at every start, and its secret was
    on its command line, where ps shows it."""
    secret = invite(logged_server, "edge-keep")["secret"]
    (tmp_path / "secret").write_text(secret + "\n")
    command = [*FERRY, "agent", "--server", logged_server.url, "--name", "edge-keep"]
    command += ["--timeout", "0.3", "--log-dir", str(tmp_path / "logs")]

    def agent(*extra: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60
        )

    first = agent("--secret-file", "secret")
    assert first.returncode == 0, first.stderr
    kept = tmp_path / ".ferry" / "agent-edge-keep.token"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    token = kept.read_text().strip()

    restarted = agent()
    assert restarted.returncode == 0, restarted.stderr
    assert "registered as edge-keep" in restarted.stderr
    assert kept.read_text().strip() not in (token, "")  # each registration, a new token
    logs = (tmp_path / "logs" / "agent-edge-keep.log").read_text()
    for text in (first.stderr, restarted.stderr, logs):
        assert secret not in text
        assert token not in text

    elsewhere = tmp_path / "elsewhere"  # the same name registered again, from another place
    elsewhere.mkdir()
    (elsewhere / "secret").write_text(invite(logged_server, "edge-keep")["secret"])
    assert agent("--secret-file", "secret", cwd=elsewhere).returncode == 0
    replaced = agent()
    assert replaced.returncode == 1
    assert "ferry agent-invite edge-keep" in replaced.stderr
    missing = agent("--secret-file", "nowhere")
    assert missing.returncode == 1
    assert "cannot read the secret file nowhere" in missing.stderr


@pytest.mark.parametrize(
    ("invited", "name", "why"),
    [
        (None, "edge-2", "unknown secret"),
        ("edge-3", "edge-4", "secret was issued to another agent"),
    ],
)
def test_a_refused_secret_stops_the_agent_with_the_reason(
    logged_server: ServerProcess, tmp_path: Path, invited: str | None, name: str, why: str
) -> None:
    secret = invite(logged_server, invited)["secret"] if invited else "0" * 64
    result = run_agent(logged_server, tmp_path, name, secret)
    assert result.returncode == 1
    assert f"ERROR ferry.agent: agent {name}: registration of agent {name!r} refused: {why}" in (
        result.stderr
    )
    assert secret not in result.stderr
    assert name not in [agent["name"] for agent in logged_server.agents()]


def test_the_log_file_rotates_at_its_configured_size(logged_server: ServerProcess) -> None:
    folder = logs(logged_server)
    secrets: list[str] = []

    def rotated_twice() -> bool:
        secrets.append(invite(logged_server, "rotation")["secret"])  # one INFO line each
        return (folder / "server.log.2").exists()

    wait_for(rotated_twice, timeout=30, interval=0)
    secrets.append(invite(logged_server, "rotation")["secret"])
    files = sorted(path.name for path in folder.iterdir())
    assert files == ["server.log", "server.log.1", "server.log.2"]  # backups = 2
    for path in folder.iterdir():
        lines = path.read_text().splitlines(keepends=True)
        assert lines
        assert path.stat().st_size <= MAX_BYTES + max(len(line.encode()) for line in lines)
        assert all(" server " in line for line in lines)
    text = "".join(path.read_text() for path in folder.iterdir())
    assert "agent secret issued for rotation by admin" in text
    assert not [secret for secret in secrets if secret in text]


def test_sighup_applies_a_good_file_and_refuses_a_bad_one(start_server, tmp_path: Path) -> None:
    config = tmp_path / "ferry.toml"
    config.write_text('[server.log]\nlevel = "INFO"\n')
    server = start_server("--agents", "0", "--config", str(config))
    config.write_text('[server]\nnotify_retry_s = 2.5\n[server.log]\nlevel = "WARNING"\n')
    server.process.send_signal(signal.SIGHUP)
    changes = ("SIGHUP: notify_retry_s: 10.0 → 2.5", "SIGHUP: log.level: 'INFO' → 'WARNING'")
    wait_for(lambda: all(line in server.log.read_text() for line in changes), timeout=10)

    config.write_text("[server]\nnotify_rety_s = 1\n")
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration not reloaded" in server.log.read_text(), timeout=10)
    assert (
        f"SIGHUP: configuration not reloaded: {config}: server.notify_rety_s: unknown key"
        " (did you mean 'notify_retry_s'?)" in server.log.read_text()
    )
    assert server.api("GET", "/api/v1/agents").status_code == 200  # still serving


@pytest.mark.parametrize(
    ("daemon", "text", "message"),
    [
        ("server", "[server]\nprot = 8000\n", "server.prot: unknown key (did you mean 'port'?)"),
        ("server", "[server.log]\nlevel = 'LOUD'\n", "server.log.level: Value error, 'LOUD'"),
        ("server", "[sever]\nport = 1\n", "unknown section [sever]: use server, agent"),
        ("agent", "[agent]\ngrace = 1\n", "agent.grace: unknown key (did you mean 'grace_s'?)"),
    ],
)
def test_a_bad_config_file_prevents_start_naming_the_key(
    tmp_path: Path, daemon: str, text: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    if daemon == "server":
        args = ["server", "--port", str(free_port()), "--agents", "0"]
    else:
        args = ["agent", "--server", "http://127.0.0.1:9", "--secret", "s" * 32]
    result = subprocess.run(
        [*FERRY, *args, "--config", str(config)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {config}: {message}")
    assert not (tmp_path / ".ferry").exists()  # nothing was created


def test_local_agents_keep_their_tokens_in_the_servers_data_directory(tmp_path: Path) -> None:
    """Not in ``.ferry`` of whatever folder the server was started from: a unit whose working
    directory is read-only, or shared by two servers, broke them."""
    data = tmp_path / "data"
    server = launch(tmp_path / "work", "--data-dir", str(data))
    try:
        wait_for(lambda: all((data / f"agent-local-{n}.token").exists() for n in (1, 2)))
        assert stat.S_IMODE((data / "agent-local-1.token").stat().st_mode) == 0o600
        assert not (tmp_path / "work" / ".ferry").exists()
    finally:
        shutdown(server)
