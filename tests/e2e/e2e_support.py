"""Helpers for end-to-end tests: a real ``ferry server`` process (with its local agents) on a
loopback port, and the CLI as a subprocess: what a user gets after ``make run``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FERRY = [sys.executable, "-m", "ferry"]
# How long a server may take to answer /healthz: a few seconds here, but more than 30 when two
# suites and other engineers' work load two cores (make chaos beside make test).
STARTUP_S = 90.0
# Runs a command as root without the capabilities that let root read and list any file
# (tests run as root): a file or folder of mode 0 is then denied to it, as to any user.
NO_DAC_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


def readers_of(server: ServerProcess, path: Path) -> list[int]:
    """The processes of ``server`` (its agents) that have ``path`` open: a copy has begun."""
    found = []
    for pid in processes_mentioning(f"--server {server.url}"):
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            with contextlib.suppress(OSError):
                if os.readlink(descriptor) == str(path):
                    found.append(pid)
                    break
    return found


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)


@dataclass
class ServerProcess:
    cwd: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    extra: list[str] = field(default_factory=list)
    ca: Path | None = None  # a server with TLS: the CA that signed its certificate
    host: str = "127.0.0.1"  # another only inside a network namespace the test made

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{self.host}:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca) if self.ca else True

    @property
    def token(self) -> str:
        return (self.cwd / ".ferry" / "admin.token").read_text().strip()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
        return {**env, "FERRY_URL": self.url, **({"FERRY_CA": str(self.ca)} if self.ca else {})}

    def cli(
        self, *args: str, check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*FERRY, *args],
            cwd=self.cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ferry {' '.join(args)} exited {result.returncode}: {result.stderr}"
            )
        return result

    def cli_json(self, *args: str, timeout: float = 300) -> Any:
        return json.loads(self.cli(*args, "--json", check=True, timeout=timeout).stdout)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, self.url + path, headers=headers, timeout=30, verify=self.verify, **kwargs
        )

    def agents(self) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/v1/agents")
        response.raise_for_status()
        return list(response.json())

    def family(self) -> list[int]:
        """The server and every agent started for it."""
        return processes_mentioning(f"--port {self.port}") + processes_mentioning(
            f"--server {self.url}"
        )

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout)


def launch(
    cwd: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    ca: Path | None = None,
    netns: tuple[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> ServerProcess:
    """Start ``ferry server`` in ``cwd`` on a free loopback port and wait until it is healthy.
    The test's own ``FERRY_*`` variables are not passed on; ``env`` adds variables. With
    ``ca``, the server has TLS (``extra`` names its certificate) and is reached by https. With
    ``netns`` (a network namespace the test made, an address of it), the server runs inside it
    and listens on that address (in clear: the namespace is the test's own). ``prefix`` runs
    it through another command (``NO_DAC_OVERRIDE``). A port found free may be taken before
    the server binds it (another test's connection got it from the same ephemeral range): the
    server is then started again on another, up to three times."""
    for attempt in range(1, 4):
        try:
            return _launch_once(cwd, extra, env, ca, netns, prefix)
        except _PortTaken:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


class _PortTaken(AssertionError):
    pass


def _launch_once(
    cwd: Path,
    extra: Sequence[str],
    env: dict[str, str] | None,
    ca: Path | None,
    netns: tuple[str, str] | None,
    prefix: Sequence[str],
) -> ServerProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = cwd.parent / f"server-{port}.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}, **(env or {})}
    inside = ("ip", "netns", "exec", netns[0]) if netns else ()
    host = netns[1] if netns else "127.0.0.1"
    listen = ("--host", host, "--insecure-http") if netns else ()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*prefix, *inside, *FERRY, "server", "--port", str(port), *listen, *extra],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=out,
        )
    server = ServerProcess(cwd, port, process, log, list(extra), ca, host)
    try:
        wait_for(lambda: _started(server), timeout=STARTUP_S)
    except BaseException as exc:
        shutdown(server)
        tail = log.read_text(errors="replace")[-3000:]
        taken = _PortTaken if "address already in use" in tail else AssertionError
        raise taken(f"ferry server did not start: {exc}\n--- its log:\n{tail}") from exc
    return server


def _started(server: ServerProcess) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"it exited with status {server.process.returncode}")
    return _healthy(server)


def shutdown(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.stop(signal.SIGTERM)
    for pid in server.family():
        os.kill(pid, signal.SIGKILL)


def _healthy(server: ServerProcess) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(
            f"server exited with {server.process.returncode}:\n{server.log.read_text()}"
        )
    try:
        return (
            httpx.get(server.url + "/healthz", timeout=1, verify=server.verify).status_code == 200
        )
    except httpx.TransportError:
        return False
