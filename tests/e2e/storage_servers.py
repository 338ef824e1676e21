"""Real storage servers on 127.0.0.1 for the tests: OpenSSH's sshd (SFTP), moto (S3), wsgidav
(WebDAV) and nginx (HTTP), each in a folder of its own, stopped at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from e2e_support import free_port

SSHD = "/usr/sbin/sshd"
NGINX = "/usr/sbin/nginx"
S3_KEY, S3_SECRET = "ferry-test-key", "ferry-test-secret-value"


@dataclass
class StorageServer:
    """One server: how a Ferry storage reaches its root, and where the files really are."""

    kind: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)

    def registration(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "url": self.url,
            "options": self.options,
            "credentials": self.credentials,
        }

    def fsspec_kwargs(self) -> dict[str, Any]:
        return {**self.options, **self.credentials}


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on port {port} after {timeout} s:\n{log.read_text()}"
                ) from None
            time.sleep(0.05)


@contextmanager
def _running(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    try:
        _wait_for_port(port, process, log)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _need(binary: str) -> None:
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} is missing: `make test` installs it (make test-servers)")


@contextmanager
def sftp_server(base: Path, prefix: Sequence[str] = ()) -> Iterator[StorageServer]:
    """sshd serving ``base/root`` over SFTP; ``prefix`` runs it through another command
    (e2e_support.NO_DAC_OVERRIDE: what mode 0 denies, it denies)."""
    _need(SSHD)
    base.mkdir(parents=True)
    root = base / "root"
    root.mkdir()
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True
        )
    shutil.copy(base / "user_key.pub", base / "authorized_keys")
    os.chmod(base / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPasswordAuthentication no\n"
        f"PermitRootLogin yes\nUsePAM no\nStrictModes no\nPidFile {base / 'sshd.pid'}\n"
        "Subsystem sftp internal-sftp\n"
    )
    command = [*prefix, SSHD, "-D", "-e", "-f", str(base / "sshd_config")]
    with _running(command, port, base / "sshd.log"):
        yield StorageServer(
            "sftp",
            f"sftp://127.0.0.1:{port}{root}",
            options={"username": os.environ.get("USER", "root"), "known_hosts": None},
            credentials={"client_keys": [str(base / "user_key")]},
        )


@contextmanager
def s3_server(base: Path) -> Iterator[StorageServer]:
    base.mkdir(parents=True)
    port = free_port()
    moto = str(Path(sys.executable).with_name("moto_server"))
    with _running([moto, "-H", "127.0.0.1", "-p", str(port)], port, base / "moto.log"):
        server = StorageServer(
            "s3",
            "s3://ferry-tests/root",
            options={"endpoint_url": f"http://127.0.0.1:{port}"},
            credentials={"key": S3_KEY, "secret": S3_SECRET},
        )
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=server.options["endpoint_url"],
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="ferry-tests")
        client.close()
        yield server


@contextmanager
def webdav_server(base: Path) -> Iterator[StorageServer]:
    root = base / "root"
    root.mkdir(parents=True)
    port = free_port()
    wsgidav = str(Path(sys.executable).with_name("wsgidav"))
    command = [wsgidav, "--host", "127.0.0.1", "--port", str(port), "--root", str(root)]
    command += ["--auth", "anonymous", "--no-config", "-q"]
    with _running(command, port, base / "wsgidav.log"):
        yield StorageServer("webdav", f"webdav://127.0.0.1:{port}/data")


@contextmanager
def webdav_server_with_password(base: Path, user: str, password: str) -> Iterator[StorageServer]:
    """wsgidav asking for HTTP basic authentication: one user with its password."""
    root = base / "root"
    (root / "data").mkdir(parents=True)
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
        "http_authenticator": {
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "verbose": 1,
    }
    (base / "wsgidav.json").write_text(json.dumps(config))
    wsgidav = str(Path(sys.executable).with_name("wsgidav"))
    command = [wsgidav, "--config", str(base / "wsgidav.json")]
    with _running(command, port, base / "wsgidav.log"):
        yield StorageServer(
            "webdav", f"webdav://127.0.0.1:{port}/data", credentials={"auth": [user, password]}
        )


@contextmanager
def http_server(base: Path) -> Iterator[tuple[StorageServer, Path]]:
    """nginx serving a folder with autoindex: a read-only source; yields it and its folder."""
    _need(NGINX)
    root = base / "www"
    root.mkdir(parents=True)
    port = free_port()
    (base / "nginx.conf").write_text(
        f"user root;\nworker_processes 1;\ndaemon off;\npid {base / 'nginx.pid'};\n"
        f"error_log {base / 'error.log'};\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {base / 'tmp'};\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}; autoindex on; }} }}\n"
    )
    with _running([NGINX, "-c", str(base / "nginx.conf")], port, base / "nginx.log"):
        yield StorageServer("http", f"http://127.0.0.1:{port}/"), root
