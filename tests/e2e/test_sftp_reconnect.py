"""An SFTP server that restarts under running agents: the next attempt connects again (the
agents kept their dead connection and failed every attempt, for 48 minutes seen)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from e2e_support import ServerProcess
from storage_servers import SSHD, _wait_for_port, sftp_server


def _descendants(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    found = [int(child) for child in children.stdout.split()]
    return found + [grandchild for child in found for grandchild in _descendants(child)]


def restart_sshd(base: Path) -> subprocess.Popen[bytes]:
    """Stop the test sshd and every connection it serves, then start it again on its port."""
    pid = int((base / "sshd.pid").read_text())
    for process in [pid, *_descendants(pid)]:  # each connection's sshd has a session of its own
        os.kill(process, signal.SIGKILL)
    config = (base / "sshd_config").read_text()
    port = int(config.split("Port ", 1)[1].split()[0])
    with (base / "sshd-again.log").open("wb") as out:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(base / "sshd_config")],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    _wait_for_port(port, process, base / "sshd-again.log")
    return process


def test_agents_connect_again_to_an_sftp_server_that_restarted(
    start_server, tmp_path: Path
) -> None:
    base = tmp_path / "sftp"
    with sftp_server(base) as sftp:
        server: ServerProcess = start_server("--agents", "1")
        response = server.api("POST", "/api/v1/storages", json=sftp.registration("remote"))
        assert response.status_code == 201, response.text
        (server.cwd / "a.txt").write_text("a")
        first = server.cli_json("submit", "--wait", "local:a.txt", "remote:one")
        assert first["status"] == "COMPLETED", first

        again = restart_sshd(base)
        try:
            second = server.cli_json("submit", "--wait", "local:a.txt", "remote:two", timeout=120)
        finally:
            again.kill()
            again.wait()
        assert second["status"] == "COMPLETED", second
        assert "DSA is deprecated" not in server.log.read_text()  # no one can act on it
        assert (base / "root" / "two" / "a.txt").read_text() == "a"
