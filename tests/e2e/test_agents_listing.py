"""``ferry agents`` lists the agents that may still work; ``--all`` adds those that left."""

from __future__ import annotations

import signal
import subprocess

from e2e_support import FERRY, ServerProcess, wait_for


def states(server: ServerProcess, *flags: str) -> dict[str, str]:
    return {a["name"]: a["state"] for a in server.cli_json("agents", *flags)}


def test_a_retired_agent_shows_only_with_all(start_server) -> None:
    server: ServerProcess = start_server("--agents", "0", "--heartbeat", "1")
    command = [*FERRY, "agent", "--server", server.url, "--token", server.token]
    agent = subprocess.Popen(
        [*command, "--name", "leaving"],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: states(server).get("leaving") == "ALIVE", timeout=20)
        agent.send_signal(signal.SIGTERM)  # a graceful stop: it says it leaves
        assert agent.wait(20) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)

    assert states(server, "--all") == {"leaving": "RETIRED"}
    assert states(server) == {}
    assert "leaving" not in server.cli("agents", check=True).stdout
    assert "RETIRED" in server.cli("agents", "--all", check=True).stdout


def test_the_table_says_what_its_numbers_count(start_server) -> None:
    server: ServerProcess = start_server()
    wait_for(lambda: len(states(server)) == 2, timeout=20)

    table = server.cli("agents", check=True).stdout

    header = next(line for line in table.splitlines() if "name" in line)
    assert header.split("┃")[5:7] == [" held ", " copying "]
    words = " ".join(table.split())
    assert "held: objects leased to the agent now" in words
    assert "copying: those it was copying at its last heartbeat" in words
