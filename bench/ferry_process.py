"""A real ``ferry server`` process for benchmarks, on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FerryServer:
    def __init__(
        self,
        cwd: Path,
        *,
        agents: int = 2,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """``env``: variables for the server (and its agents), as ``FERRY_OPTIMIZER_WINDOW_S``."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")} | (env or {})
        self.log = (cwd / "server.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "ferry",
            "server",
            "--port",
            str(self.port),
            "--agents",
            str(agents),
            "--log-level",
            "WARNING",
            *extra,
        ]
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self.log, stderr=self.log)
        self.cwd = cwd
        self._wait(self._healthy, "ferry server did not start; see server.log")
        token = (cwd / ".ferry" / "admin.token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=60)
        self._wait(lambda: self._live_agents() >= agents, "agents did not register")

    def _wait(self, ready: Any, failure: str) -> None:
        deadline = time.monotonic() + 30
        while not ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(failure)
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _live_agents(self) -> int:
        agents = self.http.get("/api/v1/agents").json()
        return sum(a["state"] in ("REGISTERED", "ALIVE") for a in agents)

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/api/v1/transfers", json=body)
        response.raise_for_status()
        return dict(response.json())

    def wait_finished(self, transfer_id: str) -> dict[str, Any]:
        """The transfer once it has ended, told by the server's event stream the moment it
        does (polling would add up to its interval to every figure)."""
        url = f"/api/v1/events?transfer={transfer_id}&kind=transfer"  # its status alone
        kind = ""
        with self.http.stream("GET", url, timeout=None) as events:
            for line in events.iter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: ") and kind == "transfer":
                    status = json.loads(line[len("data: ") :])["status"]
                    if status not in ("STANDBY", "ONGOING"):
                        break
        return dict(self.http.get(f"/api/v1/transfers/{transfer_id}").json())

    def processes(self) -> Iterator[tuple[int, str]]:
        """The server's process id, then its agents' (the children it started), with their
        role: ``server`` or ``agent``."""
        yield self.process.pid, "server"
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            children = proc_file(self.process.pid, f"task/{task.name}/children") or ""
            for pid in map(int, children.split()):
                if "agent" in (proc_file(pid, "cmdline") or "").split("\0"):
                    yield pid, "agent"

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user and system) each process of ``processes`` has spent so far."""
        spent = {}
        for pid, _role in self.processes():
            seconds = cpu_seconds(pid)
            if seconds is not None:
                spent[pid] = seconds
        return spent

    def stop(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.log.close()


def proc_file(pid: int, name: str) -> str | None:
    """``/proc/<pid>/<name>``; None once the process has ended."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:  # ended meanwhile
        return None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of process ``pid`` so far; None once it has ended."""
    stat = proc_file(pid, "stat")
    if stat is None:
        return None
    ticks = stat.rsplit(")", 1)[1].split()
    return (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
