"""--delete-extra through a real server and its agents, on the local disk and on a real SFTP
server (OpenSSH's sshd on 127.0.0.1): it deletes exactly the destination files the source
lacks, records them, deletes nothing when a copy failed or past --max-delete, never leaves the
destination folder, and its dry run lists what the run then does."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ServerProcess, launch, shutdown
from storage_servers import sftp_server
from sync_support import as_done, as_recorded, held, outcomes

SOURCE = {"a.txt": b"a" * 10, "sub/b.txt": b"b" * 20, "sub/deep/c.txt": b"c" * 30}
EXTRAS = {"gone.txt": b"g" * 7, "sub/old.txt": b"o" * 11, "stale/x.txt": b"x" * 13}
EXCLUDED = {"keep.tmp": b"t" * 5, "sub/cache.tmp": b"k" * 3}  # the filters leave these out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("delete-extra")
    with ExitStack() as stack:
        sftp = stack.enter_context(sftp_server(base / "sftp"))
        ferry = launch(base / "ferry")
        stack.callback(shutdown, ferry)
        response = ferry.api("POST", "/api/v1/storages", json=sftp.registration("sftp"))
        assert response.status_code == 201, response.text
        write(ferry.cwd / "src", SOURCE)
        yield {"ferry": ferry, "roots": {"local": ferry.cwd, "sftp": base / "sftp" / "root"}}


def write(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def submit(ferry: ServerProcess, *args: str) -> dict[str, Any]:
    result = ferry.cli("submit", "--wait", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


def last_run(ferry: ServerProcess, transfer_id: str) -> dict[str, Any]:
    return dict(ferry.cli_json("runs", transfer_id)[-1])


@pytest.mark.parametrize("storage", ["local", "sftp"])
def test_it_deletes_exactly_the_extras_and_records_them(
    world: dict[str, Any], storage: str
) -> None:
    ferry: ServerProcess = world["ferry"]
    folder = "mirror"
    destination = world["roots"][storage] / folder
    write(destination, {**EXTRAS, **EXCLUDED, "a.txt": b"old"})
    args = ("--tree", "--delete-extra", "--exclude", "*.tmp", "local:src", f"{storage}:{folder}")

    plan = json.loads(ferry.cli("submit", "--dry-run", "--json", *args, check=True).stdout)
    assert plan["counts"] == {"copy": 2, "skip": 1, "fail": 0, "delete": 3}
    assert plan["bytes"]["delete"] == sum(len(data) for data in EXTRAS.values())
    assert held(destination) == {**EXTRAS, **EXCLUDED, "a.txt": b"old"}  # nothing moved
    transfer = submit(ferry, *args)

    assert transfer["status"] == "COMPLETED", transfer
    assert held(destination) == {**SOURCE, **EXCLUDED, "a.txt": b"old"}
    recorded = outcomes(ferry, transfer["id"])
    assert as_recorded(recorded) == as_done(plan)
    deleted = {o["destination"]: o["size"] for o in recorded if o["status"] == "DELETED"}
    assert deleted == {f"{storage}:{folder}/{name}": len(data) for name, data in EXTRAS.items()}
    assert transfer["objects"]["total"] == 3  # the source's files: deletions are not in it
    run = last_run(ferry, transfer["id"])
    assert run["deletion"] == {
        "state": "DONE",
        "note": "deleted 3 extra files",
        "deleted": 3,
        "bytes": sum(len(data) for data in EXTRAS.values()),
    }


def test_nothing_is_deleted_when_a_copy_failed(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    destination = world["roots"]["local"] / "failing"
    write(destination, EXTRAS)
    (destination / "sub" / "b.txt").mkdir(parents=True)  # a folder where a file must go

    transfer = submit(ferry, "--tree", "--delete-extra", "local:src", "local:failing")

    assert transfer["status"] == "COMPLETED_WITH_ERRORS", transfer
    assert all((destination / name).read_bytes() == data for name, data in EXTRAS.items())
    run = last_run(ferry, transfer["id"])
    assert run["deletion"]["state"] == "HELD"
    assert run["deletion"]["note"].startswith("nothing deleted: 1 of ")
    assert run["deletion"]["deleted"] == 0
    assert not [o for o in outcomes(ferry, transfer["id"]) if o["status"] == "DELETED"]
    printed = ferry.cli("runs", transfer["id"], check=True).stdout
    assert "run 1: HELD: nothing deleted: 1 of " in printed


def test_more_than_max_delete_stops_before_deleting_anything(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    destination = world["roots"]["sftp"] / "capped"
    write(destination, EXTRAS)
    args = ("--tree", "--delete-extra", "--max-delete", "2", "local:src", "sftp:capped")

    plan = json.loads(ferry.cli("submit", "--dry-run", "--json", *args, check=True).stdout)
    transfer = submit(ferry, *args)

    why = "nothing deleted: 3 files to delete, more than max-delete 2"
    assert plan["deletion"] == why.replace("deleted", "would be deleted", 1)
    assert plan["counts"]["delete"] == 0
    assert transfer["status"] == "COMPLETED_WITH_ERRORS", transfer
    assert transfer["error"] == why
    assert all((destination / name).read_bytes() == data for name, data in EXTRAS.items())
    assert held(destination) == {**EXTRAS, **SOURCE}
    assert last_run(ferry, transfer["id"])["deletion"]["state"] == "FAILED"


def test_it_never_deletes_outside_the_destination(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    root = world["roots"]["local"]
    destination, elsewhere = root / "confined", root / "elsewhere"
    write(elsewhere, {"precious.txt": b"p", "inside/also.txt": b"q"})
    write(destination, {"extra.txt": b"e"})
    os.symlink(elsewhere / "inside", destination / "linked-folder")  # inside the storage
    os.symlink("/etc/hostname", destination / "out-link")  # leads out of the storage
    os.symlink(elsewhere / "precious.txt", destination / "in-link")  # a file, inside it

    transfer = submit(ferry, "--tree", "--delete-extra", "local:src", "local:confined")

    assert transfer["status"] == "COMPLETED", transfer
    assert (elsewhere / "precious.txt").read_bytes() == b"p"
    assert (elsewhere / "inside" / "also.txt").read_bytes() == b"q"
    assert Path("/etc/hostname").exists()
    assert not (destination / "extra.txt").exists()
    assert not os.path.lexists(destination / "in-link")  # the link went, not what it names
    assert os.path.islink(destination / "linked-folder")  # a link not followed: kept
    assert os.path.islink(destination / "out-link")
    deleted = {
        o["destination"] for o in outcomes(ferry, transfer["id"]) if o["status"] == "DELETED"
    }
    assert deleted == {"local:confined/extra.txt", "local:confined/in-link"}


def test_refused_where_deletions_could_not_be_right(world: dict[str, Any]) -> None:
    ferry: ServerProcess = world["ferry"]
    cases = [
        (["--delete-extra", "local:src/a.txt", "local:x"], "tree transfers only"),
        (["--tree", "--max-delete", "3", "local:src", "local:x"], "only with --delete-extra"),
        (["--tree", "--delete-extra", "--unzip", "local:src", "local:x"], "unzip"),
        (["--tree", "--delete-extra", "local:src/sub", "local:src"], "inside the destination"),
    ]
    for args, why in cases:
        result = ferry.cli("submit", *args)
        assert result.returncode != 0, args
        assert why in result.stderr, (args, result.stderr)
    assert held(ferry.cwd / "src") == SOURCE
