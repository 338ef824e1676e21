"""TLS end to end (issue 19, acceptance 4): a ``ferry server`` with a certificate signed by a CA
the test makes, a remote agent and the CLI over https moving a file; plain http to the TLS port
and a CLI that does not trust the CA each fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import wait_agent, wait_final
from e2e_support import FERRY, ServerProcess, launch, shutdown

from tls_certs import make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: tuple[Path, Path, Path]
) -> Iterator[ServerProcess]:
    """A server with TLS and no local agent: the remote agent of the test does the copies."""
    ca, cert, key = certificates
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    server = launch(tmp_path_factory.mktemp("tls-server") / "work", "--agents", "0", *tls, ca=ca)
    yield server
    shutdown(server)


def without_ferry_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}


def cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with ``url`` and no ``FERRY_CA``: it trusts the system's CAs unless told."""
    env = {**without_ferry_variables(), "FERRY_URL": url}
    return subprocess.run(
        [*FERRY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_remote_agent_and_the_cli_move_a_file_over_https(
    tls_server: ServerProcess, certificates: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    ca = certificates[0]
    assert tls_server.url.startswith("https://")
    secret = tls_server.cli_json("agent-invite", "edge-tls")["secret"]  # FERRY_CA: trusted
    env = {**without_ferry_variables(), "FERRY_AGENT_SECRET": secret}
    command = [*FERRY, "agent", "--server", tls_server.url, "--ca", str(ca), "--name", "edge-tls"]
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        wait_agent(tls_server, "edge-tls", agent.pid)
        (tls_server.cwd / "a.txt").write_bytes(b"over https\n" * 1000)
        submitted = cli(
            "--ca", str(ca), "submit", "--json", "local:a.txt", "local:out",
            url=tls_server.url, cwd=tls_server.cwd,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        transfer_id = json.loads(submitted.stdout)["id"]
        assert wait_final(tls_server, transfer_id, timeout=60)["status"] == "COMPLETED"
        status = cli("--ca", str(ca), "status", transfer_id, url=tls_server.url, cwd=tls_server.cwd)
        assert status.returncode == 0, status.stderr
        assert "COMPLETED" in status.stdout
    finally:
        agent.terminate()
        agent.wait(30)
    assert (tls_server.cwd / "out" / "a.txt").read_bytes() == b"over https\n" * 1000
    assert "registered as edge-tls" in (tmp_path / "agent.log").read_text()
    server_log = tls_server.log.read_text()
    assert f"ferry server listening on https://127.0.0.1:{tls_server.port}" in server_log


@pytest.mark.parametrize("command", [("status", "x"), ("agent-invite", "edge")])
def test_plain_http_to_the_tls_port_fails_in_one_line(
    tls_server: ServerProcess, command: tuple[str, ...]
) -> None:
    """``status`` asks with the plain client, ``agent-invite`` with httpx: both say it."""
    plain = tls_server.url.replace("https://", "http://")
    result = cli(*command, url=plain, cwd=tls_server.cwd)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "closed the connection without an answer: if it serves https, use https://" in (
        result.stderr
    )


@pytest.mark.parametrize("command", [("status", "x"), ("agent-invite", "edge")])
def test_a_cli_that_does_not_trust_the_ca_fails_in_one_line(
    tls_server: ServerProcess, command: tuple[str, ...]
) -> None:
    result = cli(*command, url=tls_server.url, cwd=tls_server.cwd)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "certificate is not trusted (unable to get local issuer certificate)" in result.stderr
    assert "give --ca FILE" in result.stderr


def test_local_agents_reach_a_tls_server_by_its_ca(
    tmp_path: Path, certificates: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = certificates
    tls = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(ca))
    server = launch(tmp_path / "work", "--agents", "1", *tls, ca=ca)
    try:
        (server.cwd / "b.txt").write_text("local agent over https")
        transfer_id = server.cli_json("submit", "local:b.txt", "local:out")["id"]
        assert wait_final(server, transfer_id, timeout=60)["status"] == "COMPLETED"
    finally:
        shutdown(server)
    assert (server.cwd / "out" / "b.txt").read_text() == "local agent over https"


def test_the_server_will_not_listen_off_loopback_in_clear(tmp_path: Path) -> None:
    result = subprocess.run(
        [*FERRY, "server", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path,
        env=without_ferry_variables(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr == (
        "error: refusing to listen on 0.0.0.0 without TLS (tokens would travel in clear):"
        " give --tls-cert and --tls-key, or --insecure-http\n"
    )
    assert not (tmp_path / ".ferry").exists()
