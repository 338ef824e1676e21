"""--sync levels and --dry-run through a real server and its agents, on the local disk and on
a real SFTP server (OpenSSH's sshd on 127.0.0.1): each level copies what it says and skips
the rest with its reason, and the dry run of a transfer lists, entry for entry, what the real
run then does."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ServerProcess, free_port, launch, shutdown
from storage_servers import sftp_server
from sync_support import as_done, as_recorded, held, outcomes

THEN, LATER = 1_700_000_000, 1_700_100_000  # the source's mtime; a destination's newer one
SOURCE = {
    "same.bin": b"s" * 100,
    "resized.bin": b"r" * 100,
    "older.bin": b"o" * 100,
    "changed.bin": b"c" * 100,
    "new.bin": b"n" * 100,
    "sub/deep.bin": b"d" * 50,
}
# What the destination holds before each run, and its files' mtimes.
DESTINATION = {
    "same.bin": (b"s" * 100, LATER),  # the same bytes, newer: skipped by every level
    "resized.bin": (b"r" * 7, LATER),  # another size: copied from level size up
    "older.bin": (b"O" * 100, THEN - 1000),  # same size, older: copied from level mtime up
    "changed.bin": (b"C" * 100, LATER),  # same size, newer, other bytes: level checksum only
    "sub/deep.bin": (b"d" * 50, LATER),
}
COPIED = {
    "exists": {"new.bin"},
    "size": {"new.bin", "resized.bin"},
    "mtime": {"new.bin", "resized.bin", "older.bin"},
    "checksum": {"new.bin", "resized.bin", "older.bin", "changed.bin"},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("sync")
    with ExitStack() as stack:
        sftp = stack.enter_context(sftp_server(base / "sftp"))
        ferry = launch(base / "ferry")
        stack.callback(shutdown, ferry)
        response = ferry.api("POST", "/api/v1/storages", json=sftp.registration("sftp"))
        assert response.status_code == 201, response.text
        put(ferry.cwd / "src", {name: (data, THEN) for name, data in SOURCE.items()})
        yield {"ferry": ferry, "roots": {"local": ferry.cwd, "sftp": base / "sftp" / "root"}}


def put(folder: Path, files: dict[str, tuple[bytes, int]]) -> None:
    for name, (data, mtime) in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))


def dry_run(ferry: ServerProcess, *args: str) -> dict[str, Any]:
    return dict(ferry.cli_json("submit", "--dry-run", *args))


def run(ferry: ServerProcess, *args: str) -> dict[str, Any]:
    result = ferry.cli("submit", "--wait", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("storage", ["local", "sftp"])
@pytest.mark.parametrize("level", ["exists", "size", "mtime", "checksum"])
def test_each_level_copies_what_it_says_and_the_dry_run_said_so(
    world: dict[str, Any], storage: str, level: str
) -> None:
    ferry: ServerProcess = world["ferry"]
    folder = f"out-{level}"
    destination = world["roots"][storage] / folder
    put(destination, DESTINATION)
    before = held(destination)
    args = ("--tree", "--sync", level, "local:src", f"{storage}:{folder}")

    plan = dry_run(ferry, *args)
    assert held(destination) == before  # the dry run moved nothing
    assert plan["counts"] == {"copy": len(COPIED[level]), "skip": 6 - len(COPIED[level])} | {
        "fail": 0,
        "delete": 0,
    }
    assert plan["bytes"]["copy"] == sum(len(SOURCE[name]) for name in COPIED[level])
    transfer = run(ferry, *args)

    assert transfer["status"] == "COMPLETED", transfer
    after = held(destination)
    for name, data in SOURCE.items():
        expected = data if name in COPIED[level] else DESTINATION[name][0]
        assert after[name] == expected, name
    recorded = outcomes(ferry, transfer["id"])
    assert as_recorded(recorded) == as_done(plan)
    skipped = [o["error"] for o in recorded if o["status"] == "SKIPPED"]
    assert skipped
    assert all(f"sync: {level}" in why for why in skipped), skipped


def test_a_level_with_a_contradicting_overwrite_is_refused(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    result = ferry.cli(
        "submit", "--tree", "--sync", "size", "--overwrite", "always", "local:src", "local:x"
    )
    assert result.returncode != 0
    assert "overwrite 'always' contradicts sync 'size'" in result.stderr
    assert not (ferry.cwd / "x").exists()
    response = ferry.api(
        "POST",
        "/api/v1/transfers",
        json={
            "sources": ["local:src"],
            "destination": "local:x",
            "kind": "tree",
            "options": {"sync": "mtime", "overwrite": "if-newer"},
        },
    )
    assert response.status_code == 422
    assert "contradicts" in response.text


def test_a_file_transfer_dry_run_plans_each_source(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    destination = world["roots"]["local"] / "files"
    put(destination, {"same.bin": (b"s" * 100, LATER)})
    args = ("--sync", "size", "local:src/same.bin", "local:src/new.bin", "local:files")
    plan = dry_run(ferry, *args)
    actions = {(e["action"], e["source"]) for e in plan["entries"]}
    assert actions == {("skip", "local:src/same.bin"), ("copy", "local:src/new.bin")}
    assert plan["bytes"] == {"copy": 100, "skip": 100, "fail": 0, "delete": 0}
    listed = ferry.cli_json("ls")
    assert not any(t["destination"] == "local:files" for t in listed)  # nothing submitted

    transfer = run(ferry, *args)
    assert as_recorded(outcomes(ferry, transfer["id"])) == as_done(plan)


def test_the_dry_run_prints_a_readable_plan(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    result = ferry.cli("submit", "--dry-run", "--tree", "local:src", "local:printed")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "copy    local:src/new.bin (100 bytes): the destination lacks it" in lines
    assert (
        "plan: 6 to copy (550 bytes), 0 to skip (0 bytes), 0 to fail (0 bytes),"
        " 0 to delete (0 bytes)"
    ) in lines
    assert lines[-1] == "dry run: nothing was submitted or moved"
    assert not (ferry.cwd / "printed").exists()


def test_the_next_run_of_a_periodic_transfer_is_planned(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    destination = world["roots"]["local"] / "periodic"
    put(destination, DESTINATION)
    created = ferry.cli_json(
        "submit",
        "--tree",
        "--sync",
        "mtime",
        "--every",
        "day",
        "--start",
        "+1d",
        "local:src",
        "local:periodic",
    )
    plan = ferry.cli_json("plan", created["id"])
    copied = {
        e["source"].removeprefix("local:src/") for e in plan["entries"] if e["action"] == "copy"
    }
    assert copied == COPIED["mtime"]
    assert ferry.cli_json("status", created["id"])["runs"] == 0  # no run was made
    shutil.rmtree(destination)


def test_a_plan_whose_storage_cannot_be_reached_says_so(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    closed = free_port()  # nothing listens there
    storage = {
        "name": "unreachable",
        "url": f"sftp://127.0.0.1:{closed}/srv",
        "options": {"username": "root", "known_hosts": None},
    }
    assert ferry.api("POST", "/api/v1/storages", json=storage).status_code == 201
    body = {"sources": ["local:src"], "destination": "unreachable:out", "kind": "tree"}
    response = ferry.api("POST", "/api/v1/transfers/plan", json=body)
    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("no plan could be made: ")
    result = ferry.cli("submit", "--dry-run", "--tree", "local:src", "unreachable:out")
    assert result.returncode != 0
    assert "no plan could be made" in result.stderr
