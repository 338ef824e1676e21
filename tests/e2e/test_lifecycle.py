"""The server's life: it starts its agents, and SIGINT or SIGTERM stops all of them."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from e2e_support import FERRY, wait_for


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def live_agents(server) -> list[dict]:
    return [a for a in server.agents() if a["state"] in ("REGISTERED", "ALIVE")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_server_and_its_agents(start_server, signum) -> None:
    server = start_server()
    assert wait_for(lambda: len(live_agents(server)) == 2)
    assert len(server.family()) == 3  # the server and two agents

    assert server.stop(signum, timeout=30) == 0

    assert wait_for(lambda: server.family() == [], timeout=15)
    log = server.log.read_text()
    assert "Traceback" not in log


def test_agents_do_not_outlive_a_killed_server(start_server) -> None:
    server = start_server()
    wait_for(lambda: len(live_agents(server)) == 2)
    # Its agents by pid: once the server is gone its port is free, and another test's server
    # may take it, whose agents would mention the same URL.
    agents = [pid for pid in server.family() if pid != server.process.pid]
    assert len(agents) == 2
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    assert wait_for(lambda: not [pid for pid in agents if alive(pid)], timeout=15)


def test_storages_from_the_command_line(start_server, tmp_path) -> None:
    archive = tmp_path / "archive"
    (archive / "in").mkdir(parents=True)
    (archive / "in" / "report.csv").write_text("a,b\n1,2\n")
    server = start_server("--storage", f"archive={archive.as_uri()}")

    transfer = server.cli_json("submit", "--wait", "archive:in/report.csv", "local:inbox")

    assert transfer["status"] == "COMPLETED"
    assert (server.cwd / "inbox" / "report.csv").read_text() == "a,b\n1,2\n"


def test_a_restarted_server_keeps_its_token_and_transfers(start_server, tmp_path) -> None:
    first = start_server("--agents", "0")
    (first.cwd / "a.txt").write_text("a")
    transfer = first.cli_json("submit", "local:a.txt", "local:out")
    token = first.token
    first.stop()
    from e2e_support import launch, shutdown

    again = launch(first.cwd, "--agents", "1")
    try:
        assert again.token == token
        finished = wait_for(
            lambda: (t := again.cli_json("status", transfer["id"]))["status"] == "COMPLETED" and t
        )
        assert finished["objects"]["done"] == 1
        assert (again.cwd / "out" / "a.txt").read_text() == "a"
    finally:
        shutdown(again)


def test_an_agent_started_by_hand_with_a_token_does_the_work(start_server) -> None:
    server = start_server("--agents", "0", "--heartbeat", "0.5")
    (server.cwd / "a.txt").write_text("by hand")
    env = {**server.env(), "FERRY_AGENT_TOKEN": server.token}
    agent = subprocess.Popen(
        [*FERRY, "agent", "--server", server.url, "--name", "remote-1", "--max-active", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        transfer = server.cli_json("submit", "--wait", "local:a.txt", "local:out")
        assert transfer["status"] == "COMPLETED"
        (remote,) = wait_for(lambda: [a for a in server.agents() if a["state"] == "ALIVE"])
        assert remote["name"] == "remote-1"
        assert remote["status"]["pid"] == agent.pid
        assert remote["status"]["stats"]["DONE"] == 1
    finally:
        agent.send_signal(signal.SIGTERM)
        _out, errors = agent.communicate(timeout=30)
    assert agent.returncode == 0
    assert b"Traceback" not in errors
    assert (server.cwd / "out" / "a.txt").read_text() == "by hand"
