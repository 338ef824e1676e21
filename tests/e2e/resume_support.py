"""An interrupted large copy resumed, end to end (engine.resume): a real server, an agent
killed with SIGKILL once the copy's checkpoint record says it is past 60 %, and a second agent
that takes the retry; shared by tests/e2e/test_resume.py (small files, the threshold lowered
through the agents' ``resume_min_bytes`` setting) and tests/chaos (1 GiB, the default one)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daemon_support import AgentProcess, Daemons, wait_agent, wait_final
from e2e_support import ServerProcess, wait_for
from storage_servers import StorageServer, http_server, sftp_server

SOURCES = ["file", "sftp", "http"]
KILL_AT = 0.6  # of the object, as its checkpoint record says


def random_file(path: Path, size: int) -> str:
    """``size`` random bytes (nothing sparse, nothing compressible) at ``path``; their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 8 * 1024 * 1024))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


@dataclass
class World:
    """The storage servers of a module: where each source kind keeps its files."""

    sftp: StorageServer
    sftp_root: Path
    http: StorageServer
    www: Path


@contextmanager
def storage_world(base: Path) -> Iterator[World]:
    with ExitStack() as stack:
        sftp = stack.enter_context(sftp_server(base / "sftp"))
        http, www = stack.enter_context(http_server(base / "http"))
        yield World(sftp, Path(urlsplit(sftp.url).path), http, www)


def place(original: Path, folder: Path) -> None:
    """The source file put in ``folder`` as ``big.bin``: a hard link where it can be (one
    file of random bytes made once serves every test), else a copy."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "big.bin").exists():
        return  # placed by an earlier test of the module
    try:
        os.link(original, folder / "big.bin")
    except OSError:
        shutil.copyfile(original, folder / "big.bin")


@dataclass
class Scenario:
    server: ServerProcess
    daemons: Daemons
    config: Path  # the agents' configuration file
    source: str  # STORAGE:PATH of the object
    destination: str  # the folder it is copied into
    landed: Path  # that folder, on this machine
    parts: Path  # the folder its .part and record are in


def scenario(
    daemons: Daemons, world: World, original: Path, kind: str, resume_min_bytes: int, sftp_to=False
) -> Scenario:
    """A server without agents of its own, the storages registered, ``original`` placed on
    the ``kind`` source; copied to the server's local storage (to SFTP with ``sftp_to``)."""
    server = daemons.server(
        "--agents", "0", "--heartbeat", "0.5", "--lease-ttl", "3", "--agent-lost-after", "3"
    )
    for name, storage in (("sftp", world.sftp), ("web", world.http)):
        response = server.api("POST", "/api/v1/storages", json=storage.registration(name))
        assert response.status_code == 201, response.text
    folder = {"file": server.cwd / "src", "sftp": world.sftp_root / "src", "http": world.www}
    place(original, folder[kind])
    source = {"file": "local:src/big.bin", "sftp": "sftp:src/big.bin", "http": "web:big.bin"}
    config = daemons.root / "agent.toml"
    config.write_text(f"[agent]\nresume_min_bytes = {resume_min_bytes}\n")
    if sftp_to:
        out = world.sftp_root / f"out-{kind}"
        return Scenario(server, daemons, config, source[kind], "sftp:" + out.name, out, out)
    out = server.cwd / "dst"
    return Scenario(server, daemons, config, source[kind], "local:dst", out, out)


def agent(run: Scenario, name: str) -> tuple[AgentProcess, str]:
    """An agent started by hand with the scenario's settings, registered and heard from."""
    secret = run.server.cli_json("agent-invite", name)["secret"]
    started = run.daemons.agent(run.server, name, "--secret", secret, "--config", str(run.config))
    return started, wait_agent(run.server, name, started.pid)["id"]


def checkpoint(parts: Path) -> int:
    """How far the first attempt's checkpoint record says its .part is known (0: none yet,
    or caught while it is rewritten)."""
    for record in parts.glob(".big.bin.ferry-*-1.part.resume"):
        try:
            return int(json.loads(record.read_bytes())["offset"])
        except (OSError, ValueError, KeyError):
            return 0
    return 0


def interrupt(run: Scenario, size: int, bandwidth: str) -> dict[str, Any]:
    """Submit the copy to a first agent and kill it (SIGKILL) once its checkpoint record is
    past ``KILL_AT`` of ``size``; the transfer, and the record's offset then."""
    first, _id = agent(run, "first")
    submitted = run.server.cli_json("submit", run.source, run.destination, "--bandwidth", bandwidth)
    reached = wait_for(
        lambda: (n := checkpoint(run.parts)) >= KILL_AT * size and n,
        timeout=60 + size / 2**20,  # a MiB a second at least
        interval=0.01,
    )
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait(30)
    assert not (run.landed / "big.bin").exists(), "copied whole before the kill"
    return {"id": submitted["id"], "checkpoint": reached}


def retry(run: Scenario, transfer_id: str) -> tuple[dict[str, Any], AgentProcess, int]:
    """A second agent takes the retry; the final transfer, the agent, and the bytes its
    counter (agent statistics) says it moved."""
    second, second_id = agent(run, "second")
    done = wait_final(run.server, transfer_id, timeout=900)
    [record] = [a for a in run.server.agents() if a["id"] == second_id]
    return done, second, int(record["stats"]["bytes"])


def flip_a_byte(part: Path, at: int) -> None:
    with part.open("r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 0x01]))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*"))
