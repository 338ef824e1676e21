"""Source replicas through a real server and its agents: ``ferry submit SRC DEST --replica
URL…`` reads the object from the first place that can give it, from the local disk, a real
SFTP server (OpenSSH's sshd on 127.0.0.1) and moto's S3 server; the outcome names the place
read and keeps the errors of those that failed; an attempt fails only when every place did;
bad replicas are refused with a clear message."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ServerProcess, free_port, launch, shutdown
from storage_servers import s3_server, sftp_server

PROBE = Path(__file__).with_name("storage_probe.py")
DATA = bytes(range(256)) * 4096  # 1 MiB: more than one block of a stream


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Ferry server with the local disk, an SFTP server and an S3 bucket each holding
    ``rep/data.bin``, and ``down``: an HTTP storage nothing answers at."""
    base = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        sftp = stack.enter_context(sftp_server(base / "sftp"))
        s3 = stack.enter_context(s3_server(base / "s3"))
        ferry = launch(base / "ferry")
        stack.callback(shutdown, ferry)
        for name, server in (("sftp", sftp), ("s3", s3)):
            response = ferry.api("POST", "/api/v1/storages", json=server.registration(name))
            assert response.status_code == 201, response.text
        down = {"name": "down", "url": f"http://127.0.0.1:{free_port()}/files"}
        assert ferry.api("POST", "/api/v1/storages", json=down).status_code == 201
        written = json.dumps({"data.bin": DATA.hex()})
        command = [sys.executable, str(PROBE), "write", s3.url, json.dumps(s3.fsspec_kwargs())]
        subprocess.run([*command, "rep"], input=written, text=True, check=True, timeout=120)
        for root in (ferry.cwd / "mirror", base / "sftp" / "root"):
            (root / "rep").mkdir(parents=True)
            (root / "rep" / "data.bin").write_bytes(DATA)
        yield ferry


def submit(ferry: ServerProcess, *args: str) -> dict[str, Any]:
    """``ferry submit --wait --json ARGS``: the transfer as it ended, whatever its status."""
    result = ferry.cli("submit", "--wait", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


def the_object(ferry: ServerProcess, transfer_id: str) -> dict[str, Any]:
    (found,) = ferry.cli_json("outcomes", transfer_id)["objects"]
    return dict(found)


def test_the_first_replica_missing_the_second_is_used_with_no_retry_counted(world) -> None:
    ferry: ServerProcess = world
    args = ["--checksum", "sha256", "local:gone/data.bin", "local:out-second"]
    transfer = submit(ferry, *args, "--replica", "local:mirror/rep/data.bin")

    assert transfer["status"] == "COMPLETED", transfer
    assert transfer["sources"] == [["local:gone/data.bin", "local:mirror/rep/data.bin"]]
    assert (ferry.cwd / "out-second" / "data.bin").read_bytes() == DATA
    found = the_object(ferry, transfer["id"])
    assert (found["status"], found["attempts"]) == ("DONE", 1)  # no retry was counted
    assert found["replica"] == "local:mirror/rep/data.bin"
    assert found["error"] == (
        "read from local:mirror/rep/data.bin after: not found: local:gone/data.bin"
    )
    assert found["checksum"] == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert [a["state"] for a in found["history"]] == ["DONE"]

    shown = ferry.cli("outcomes", transfer["id"], check=True).stdout
    assert "read from local:mirror/rep/data.bin" in " ".join(shown.split())
    status = ferry.cli("status", transfer["id"], check=True).stdout
    assert "from local:gone/data.bin (replicas: local:mirror/rep/data.bin)" in status


@pytest.mark.parametrize("remote", ["sftp", "s3"])
def test_a_remote_replica_is_used_when_the_local_source_fails(world, remote: str) -> None:
    ferry: ServerProcess = world
    destination = f"out-{remote}"
    transfer = submit(
        ferry, "local:gone/data.bin", f"local:{destination}", "--replica", f"{remote}:rep/data.bin"
    )

    assert transfer["status"] == "COMPLETED", transfer
    assert (ferry.cwd / destination / "data.bin").read_bytes() == DATA
    assert sorted(p.name for p in (ferry.cwd / destination).iterdir()) == ["data.bin"]
    found = the_object(ferry, transfer["id"])
    assert (found["status"], found["attempts"], found["bytes"]) == ("DONE", 1, len(DATA))
    assert found["replica"] == f"{remote}:rep/data.bin"
    assert "not found: local:gone/data.bin" in found["error"]


def test_every_replica_failing_fails_with_each_ones_error(world) -> None:
    ferry: ServerProcess = world
    transfer = submit(
        ferry,
        "local:gone/data.bin",
        "local:out-none",
        "--replica",
        "sftp:rep/nothing.bin",
        "--replica",
        "s3:rep/nothing.bin",
    )

    assert transfer["status"] == "FAILED", transfer
    found = the_object(ferry, transfer["id"])
    assert (found["status"], found["attempts"], found["replica"]) == ("FAILED", 1, None)
    assert found["error_class"] == "not_found"  # permanent everywhere: not retried
    assert found["error"] == (
        "every replica failed: not found: local:gone/data.bin; not found: sftp:rep/nothing.bin;"
        " not found: s3:rep/nothing.bin"
    )
    assert not (ferry.cwd / "out-none").exists() or not any((ferry.cwd / "out-none").iterdir())


def test_a_transient_failure_among_them_retries_from_the_next_place(world) -> None:
    ferry: ServerProcess = world
    transfer = submit(
        ferry, "--retries", "1", "local:gone/data.bin", "local:out-down", "--replica", "down:a.bin"
    )

    assert transfer["status"] == "FAILED", transfer
    found = the_object(ferry, transfer["id"])
    assert (found["status"], found["attempts"]) == ("FAILED", 2)  # retryable: one retry
    first, second = (a["error"] for a in found["history"])
    # attempt 1 starts at the source, attempt 2 at the replica (wrapping)
    assert first.startswith("every replica failed: not found: local:gone/data.bin; ")
    assert "down:a.bin" in first
    assert second.startswith("every replica failed: ")
    assert second.index("down:a.bin") < second.index("local:gone/data.bin")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["local:a.bin", "local:out", "--replica", "nowhere:a.bin"], "nowhere"),
        (["--tree", "local:mirror", "local:out", "--replica", "sftp:rep"], "not with --tree"),
        (["local:a.bin", "local:b.bin", "local:out", "--replica", "sftp:x"], "exactly one SOURCE"),
        (["local:a.bin", "local:out", "--replica", "local:../../etc/passwd"], "outside storage"),
    ],
)
def test_bad_replicas_are_refused_with_one_line(world, args: list[str], says: str) -> None:
    ferry: ServerProcess = world
    before = ferry.api("GET", "/api/v1/transfers").json()["items"]
    result = ferry.cli("submit", *args)

    assert result.returncode != 0
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert ferry.api("GET", "/api/v1/transfers").json()["items"] == before


def test_the_api_refuses_replicas_on_a_tree_as_a_problem(world) -> None:
    ferry: ServerProcess = world
    body = {"sources": [["local:mirror", "sftp:rep"]], "destination": "local:o", "kind": "tree"}
    response = ferry.api("POST", "/api/v1/transfers", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "replicas apply to file transfers only" in response.json()["detail"]


def test_an_expected_checksum_passes_over_a_stale_replica(world) -> None:
    ferry: ServerProcess = world
    (ferry.cwd / "stale").mkdir()
    (ferry.cwd / "stale" / "data.bin").write_bytes(DATA[::-1])  # same size, other bytes
    expected = "sha256:" + hashlib.sha256(DATA).hexdigest()
    transfer = submit(
        ferry,
        "--expected-checksum",
        expected,
        "local:stale/data.bin",
        "local:out-expected",
        "--replica",
        "sftp:rep/data.bin",
    )

    assert transfer["status"] == "COMPLETED", transfer
    assert transfer["options"]["expected_checksum"] == expected
    assert (ferry.cwd / "out-expected" / "data.bin").read_bytes() == DATA
    found = the_object(ferry, transfer["id"])
    assert (found["replica"], found["checksum"], found["attempts"]) == (
        "sftp:rep/data.bin",
        expected,
        1,
    )
    assert found["error"].startswith(
        f"read from sftp:rep/data.bin after: checksum mismatch on local:stale/data.bin:"
        f" expected {expected}, got sha256:"
    )
