"""Every source × destination among file, SFTP, S3 and WebDAV (and HTTP as a source), against
real servers on 127.0.0.1, through a real Ferry server and its agents: each tree arrives whole."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ServerProcess, launch, shutdown, wait_for
from storage_servers import StorageServer, http_server, s3_server, sftp_server, webdav_server

PROBE = Path(__file__).with_name("storage_probe.py")
WRITABLE = ["file", "sftp", "s3", "webdav"]
SOURCES = [*WRITABLE, "http"]
TREE = {
    "empty": b"",
    "big 20MB.bin": os.urandom(20 * 1024 * 1024),
    "nested/a/b/deep.txt": b"deep\n",
    "nested/x.bin": os.urandom(100_000),
    "Données/été ü.txt": "données\n".encode(),
}


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The storage servers, a Ferry server with them registered, and the trees in place."""
    base = tmp_path_factory.mktemp("storages")
    with ExitStack() as stack:
        servers: dict[str, StorageServer] = {
            "sftp": stack.enter_context(sftp_server(base / "sftp")),
            "s3": stack.enter_context(s3_server(base / "s3")),
            "webdav": stack.enter_context(webdav_server(base / "webdav")),
        }
        http, www = stack.enter_context(http_server(base / "http"))
        servers["http"] = http
        (base / "files").mkdir()
        servers["file"] = StorageServer("file", (base / "files").as_uri())
        ferry = launch(base / "ferry")
        stack.callback(shutdown, ferry)
        for name, server in servers.items():
            response = ferry.api("POST", "/api/v1/storages", json=server.registration(name))
            assert response.status_code == 201, response.text
        for name in WRITABLE:
            write_tree(servers[name], "tree")
        for name, data in TREE.items():
            (www / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
            (www / "tree" / name).write_bytes(data)
        yield {"servers": servers, "ferry": ferry, "results": run_all(ferry)}


def write_tree(server: StorageServer, folder: str) -> None:
    probe("write", server, folder, stdin=json.dumps({k: v.hex() for k, v in TREE.items()}))


def read_tree(server: StorageServer, folder: str) -> dict[str, str]:
    """An independent read of what landed: every file below ``folder``, hashed."""
    return dict(json.loads(probe("read", server, folder)))


def probe(action: str, server: StorageServer, folder: str, stdin: str = "") -> str:
    """storage_probe.py in a process of its own: its clients' connections close with it."""
    command = [
        sys.executable,
        str(PROBE),
        action,
        server.url,
        json.dumps(server.fsspec_kwargs()),
        folder,
    ]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_all(ferry: ServerProcess) -> dict[tuple[str, str], dict[str, Any]]:
    """Submit every pair at once (the agents work on them side by side), wait for them all."""
    pending = {}
    for source in SOURCES:
        for destination in WRITABLE:
            body = {
                "sources": [f"{source}:tree"],
                "destination": f"{destination}:{source}-to-{destination}",
                "kind": "tree",
            }
            response = ferry.api("POST", "/api/v1/transfers", json=body)
            assert response.status_code == 201, response.text
            pending[(source, destination)] = response.json()["id"]

    def finished(transfer_id: str) -> dict[str, Any] | None:
        body = ferry.api("GET", f"/api/v1/transfers/{transfer_id}").json()
        return body if body["status"] not in ("STANDBY", "ONGOING") else None

    return {
        pair: wait_for(lambda t=tid: finished(t), timeout=600, interval=0.5)
        for pair, tid in pending.items()
    }


@pytest.mark.parametrize("destination", WRITABLE)
@pytest.mark.parametrize("source", SOURCES)
def test_a_tree_crosses_between_storages_whole(world, source: str, destination: str) -> None:
    result = world["results"][(source, destination)]
    assert result["status"] == "COMPLETED", result["error"]
    assert result["objects"]["done"] == len(TREE)
    landed = read_tree(world["servers"][destination], f"{source}-to-{destination}")
    assert landed == digests(TREE)  # every byte, and nothing else (no temporary file left)


@pytest.mark.parametrize("destination", WRITABLE)
def test_overwrite_always_replaces_on_every_storage(world, destination: str) -> None:
    ferry = world["ferry"]
    body = {
        "sources": ["file:tree/nested/x.bin"],
        "destination": f"{destination}:replaced",
        "options": {"overwrite": "always"},
    }
    for _round in range(2):
        transfer_id = ferry.api("POST", "/api/v1/transfers", json=body).json()["id"]
        final = wait_for(
            lambda t=transfer_id: (
                (b := ferry.api("GET", f"/api/v1/transfers/{t}").json())["status"]
                not in ("STANDBY", "ONGOING")
                and b
            ),
            timeout=60,
        )
        assert final["status"] == "COMPLETED", final["error"]
        assert final["objects"]["done"] == 1
    landed = read_tree(world["servers"][destination], "replaced")
    assert landed == {"x.bin": digests(TREE)["nested/x.bin"]}
