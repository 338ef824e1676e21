"""Helpers for the daemon tests: servers restarted in the same folder, ``ferry agent``
processes started by hand (as on another host), and the server's log read as a file."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from e2e_support import FERRY, ServerProcess, launch, shutdown, wait_for

ALIVE = ("REGISTERED", "ALIVE")
FINAL = ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED")


@dataclass
class AgentProcess:
    """``ferry agent`` run by hand against a server, its output kept in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    _out: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self._out.close()


@dataclass
class Daemons:
    """Servers and hand-started agents of one test; all stopped (stragglers killed) after it."""

    root: Path
    servers: list[ServerProcess] = field(default_factory=list)
    agents: list[AgentProcess] = field(default_factory=list)

    def server(
        self, *extra: str, cwd: Path | None = None, netns: tuple[str, str] | None = None
    ) -> ServerProcess:
        """A server in ``cwd`` (a fresh folder unless given: the same one to restart); with
        ``netns`` (a namespace, an address of it), inside that network namespace."""
        folder = cwd or self.root / f"work{len(self.servers)}"
        server = launch(folder, *extra, netns=netns)
        self.servers.append(server)
        return server

    def agent(
        self,
        server: ServerProcess,
        name: str,
        *extra: str,
        url: str | None = None,
        netns: str | None = None,
        env: dict[str, str] | None = None,
    ) -> AgentProcess:
        """``ferry agent --server URL --name NAME ...``, run from a folder of its own; ``url``
        instead of ``server``'s (several servers: ``URL1,URL2``); inside the network namespace
        ``netns`` if given; ``env``: variables added to the server's client environment."""
        folder = self.root / f"agent-{name}"
        folder.mkdir(exist_ok=True)
        log = self.root / f"agent-{name}-{len(self.agents)}.log"
        out = log.open("wb")
        inside = ["ip", "netns", "exec", netns] if netns else []
        command = [*inside, *FERRY, "agent", "--server", url or server.url, "--name", name, *extra]
        process = subprocess.Popen(
            command,
            cwd=folder,
            env={**server.env(), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        agent = AgentProcess(name, process, log, out)
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.agents:
            agent.stop()
        for server in self.servers:
            shutdown(server)
            if server.process.poll() is None:
                server.process.kill()
            server.process.wait(30)


def transfer(server: ServerProcess, transfer_id: str) -> dict[str, Any]:
    response = server.api("GET", f"/api/v1/transfers/{transfer_id}")
    response.raise_for_status()
    return dict(response.json())


def wait_final(server: ServerProcess, transfer_id: str, timeout: float) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        found = transfer(server, transfer_id)
        return found if found["status"] in FINAL else None

    result: dict[str, Any] = wait_for(final, timeout=timeout, interval=0.2)
    return result


def agent_named(server: ServerProcess, name: str) -> dict[str, Any] | None:
    """The registry's record of agent ``name`` once it is registered and alive."""
    for agent in server.agents():
        if agent["name"] == name and agent["state"] in ALIVE:
            return dict(agent)
    return None


def wait_agent(
    server: ServerProcess, name: str, pid: int | None = None, *, heard: bool = True
) -> dict[str, Any]:
    """Agent ``name`` registered and alive; with ``heard``, once a heartbeat said its pid
    (``pid``, if given). A remote agent's first heartbeat comes a heartbeat period later."""

    def ready() -> dict[str, Any] | None:
        agent = agent_named(server, name)
        if agent is None or not heard:
            return agent
        said = agent["status"].get("pid")
        return agent if said and (pid is None or said == pid) else None

    result: dict[str, Any] = wait_for(ready, timeout=30, interval=0.1)
    return result


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


FERRY_DEBUG = re.compile(r" DEBUG ferry(\.[a-z_]+)*: ")


def ferry_debug_lines(log: Path) -> list[str]:
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    return [line for line in text.splitlines() if FERRY_DEBUG.search(line)]
