"""Filters on tree transfers and skipped source errors, through a real server and its agents,
from a local disk and from a real SFTP server (OpenSSH's sshd on 127.0.0.1); filters from S3
too (moto's server), whose objects' LastModified cannot be set back.

The server, its agents and sshd run without root's power to read any file (NO_DAC_OVERRIDE),
so a file or folder of mode 0 is denied to them for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import NO_DAC_OVERRIDE, ServerProcess, launch, shutdown
from storage_servers import s3_server, sftp_server

STORAGES = ["local", "sftp"]
PROBE = Path(__file__).with_name("storage_probe.py")
OLD = 1_600_000_000  # 2020-09-13: older than any --max-age below
TREE = {
    "keep.csv": b"k" * 10,
    "big.csv": b"b" * 5000,
    "tiny.csv": b"t",
    "old.csv": b"o" * 10,
    "notes.txt": b"n" * 20,
    "skip.tmp": b"s" * 5,
    "cache/c.csv": b"c" * 10,
    "sub/deep.csv": b"d" * 10,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Ferry server with the local disk and an SFTP server, both holding the tree under
    ``tree``; each storage's root as a folder of this machine."""
    base = tmp_path_factory.mktemp("filters")
    with ExitStack() as stack:
        sftp = stack.enter_context(sftp_server(base / "sftp", prefix=NO_DAC_OVERRIDE))
        s3 = stack.enter_context(s3_server(base / "s3"))
        ferry = launch(base / "ferry", prefix=NO_DAC_OVERRIDE)
        stack.callback(shutdown, ferry)
        for name, server in (("sftp", sftp), ("s3", s3)):
            response = ferry.api("POST", "/api/v1/storages", json=server.registration(name))
            assert response.status_code == 201, response.text
        written = json.dumps({name: data.hex() for name, data in TREE.items()})
        command = [sys.executable, str(PROBE), "write", s3.url, json.dumps(s3.fsspec_kwargs())]
        subprocess.run([*command, "tree"], input=written, text=True, check=True, timeout=120)
        roots = {"local": ferry.cwd, "sftp": base / "sftp" / "root"}
        for root in roots.values():
            for name, data in TREE.items():
                (root / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
                (root / "tree" / name).write_bytes(data)
            os.utime(root / "tree" / "old.csv", (OLD, OLD))
        yield {"ferry": ferry, "roots": roots}


def submit(ferry: ServerProcess, *args: str) -> dict[str, Any]:
    """``ferry submit --wait --json ARGS``: the transfer as it ended, whatever its status."""
    result = ferry.cli("submit", "--wait", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


def landed(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize(
    ("options", "kept"),
    [
        (  # excludes, then filter rules in order: "+ *" takes what is left
            [
                "--exclude",
                "*.tmp",
                "--exclude",
                "cache/",
                "--filter",
                "- notes.txt",
                "--filter",
                "+ *",
            ],
            {"keep.csv", "big.csv", "tiny.csv", "old.csv", "sub/deep.csv"},
        ),
        (  # the include comes before the exclude: sub/deep.csv is taken; the rest left out
            ["--include", "*.csv", "--exclude", "sub/**"],
            {"keep.csv", "big.csv", "tiny.csv", "old.csv", "sub/deep.csv", "cache/c.csv"},
        ),
        (  # a rule anchored at the root, and a filter rule after an include
            ["--include", "/*.csv", "--filter", "- keep.csv"],
            {"keep.csv", "big.csv", "tiny.csv", "old.csv"},
        ),
        (  # sizes are inclusive, in bytes or binary units; ages compare the listed mtime
            ["--min-size", "2", "--max-size", "1k", "--max-age", "30d"],
            {"keep.csv", "notes.txt", "skip.tmp", "cache/c.csv", "sub/deep.csv"},
        ),
        (["--min-age", "1d"], {"old.csv"}),
        (["--max-age", "2019-01-01T00:00:00Z"], set(TREE)),  # an absolute time
    ],
    ids=["exclude-filter", "include-first", "anchored", "size-age", "min-age", "since-2019"],
)
def test_filters_take_only_what_they_keep_and_count_the_rest(
    world, storage: str, options: list[str], kept: set[str], request: pytest.FixtureRequest
) -> None:
    ferry: ServerProcess = world["ferry"]
    destination = f"out-{storage}-{request.node.callspec.id}"
    transfer = submit(ferry, "--tree", *options, f"{storage}:tree", f"local:{destination}")

    assert transfer["status"] == "COMPLETED", transfer
    assert landed(ferry.cwd / destination) == kept
    objects = transfer["objects"]
    assert (objects["total"], objects["done"]) == (len(kept), len(kept))
    assert objects["filtered"] == len(TREE) - len(kept)
    (run,) = ferry.cli_json("runs", transfer["id"])
    assert run["objects"]["filtered"] == len(TREE) - len(kept)
    outcomes = ferry.cli_json("outcomes", transfer["id"])
    assert {o["source"].split(":tree/")[1] for o in outcomes["objects"]} == kept


def test_filters_on_s3_read_its_sizes_and_last_modified(world) -> None:
    ferry: ServerProcess = world["ferry"]
    rules = ["--include", "*.csv", "--exclude", "sub/**", "--max-size", "1k"]
    taken = submit(ferry, "--tree", *rules, "s3:tree", "local:out-s3")
    fresh = submit(ferry, "--tree", "--min-age", "1h", "s3:tree", "local:out-s3-none")

    assert taken["status"] == "COMPLETED", taken
    kept = {"keep.csv", "tiny.csv", "old.csv", "cache/c.csv", "sub/deep.csv"}
    assert landed(ferry.cwd / "out-s3") == kept
    assert (taken["objects"]["total"], taken["objects"]["filtered"]) == (5, 3)
    # every object was just written: none is an hour old
    assert (fresh["objects"]["total"], fresh["objects"]["filtered"]) == (0, len(TREE))
    assert not (ferry.cwd / "out-s3-none").exists()


def test_status_says_how_many_entries_were_filtered(world) -> None:
    ferry: ServerProcess = world["ferry"]
    transfer = submit(ferry, "--tree", "--exclude", "*.csv", "local:tree", "local:out-status")
    shown = ferry.cli("status", transfer["id"], check=True).stdout
    assert "filtered out: 6 entries of the tree (not objects)" in shown
    assert "objects: 2 total" in shown


@pytest.fixture(scope="module")
def unreadable(world) -> Iterator[dict[str, Path]]:
    """On each storage, ``errs``: a file, a folder, a file of mode 0 and a folder of mode 0
    (each holding one file)."""
    roots: dict[str, Path] = world["roots"]
    locked = []
    for root in roots.values():
        errs = root / "errs"
        (errs / "open").mkdir(parents=True)
        (errs / "shut").mkdir()
        (errs / "a.txt").write_bytes(b"a")
        (errs / "open" / "b.txt").write_bytes(b"b")
        (errs / "shut" / "c.txt").write_bytes(b"c")
        (errs / "locked.txt").write_bytes(b"l")
        locked += [errs / "locked.txt", errs / "shut"]
    for path in locked:
        path.chmod(0)
    yield roots
    for path in locked:
        path.chmod(0o755)


def states(ferry: ServerProcess, transfer_id: str) -> dict[str, tuple[str, str | None]]:
    found = ferry.cli_json("outcomes", transfer_id)["objects"]
    return {o["source"].split(":", 1)[1]: (o["status"], o["error"]) for o in found}


@pytest.mark.parametrize("storage", STORAGES)
def test_source_errors_are_skipped_with_the_reason_when_asked(world, unreadable, storage) -> None:
    ferry: ServerProcess = world["ferry"]
    sources = [f"{storage}:errs/a.txt", f"{storage}:errs/missing.txt", f"{storage}:errs/locked.txt"]
    files = submit(ferry, "--skip-source-errors", *sources, f"local:skip-files-{storage}")
    tree = submit(
        ferry, "--tree", "--skip-source-errors", f"{storage}:errs", f"local:skip-{storage}"
    )

    assert files["status"] == "COMPLETED", states(ferry, files["id"])
    assert states(ferry, files["id"]) == {
        "errs/a.txt": ("DONE", None),
        "errs/missing.txt": ("SKIPPED", f"not found: {storage}:errs/missing.txt"),
        "errs/locked.txt": ("SKIPPED", f"permission denied: {storage}:errs/locked.txt"),
    }
    assert tree["status"] == "COMPLETED", (tree["error"], states(ferry, tree["id"]))
    found = states(ferry, tree["id"])
    assert found["errs/a.txt"] == found["errs/open/b.txt"] == ("DONE", None)
    assert found["errs/locked.txt"] == (
        "SKIPPED",
        f"permission denied: {storage}:errs/locked.txt",
    )
    state, error = found["errs/shut"]
    assert state == "SKIPPED"
    assert error is not None
    assert error.startswith("cannot list folder:")
    assert "denied" in error.lower()
    assert landed(ferry.cwd / f"skip-{storage}") == {"a.txt", "open/b.txt"}


@pytest.mark.parametrize("storage", STORAGES)
def test_without_the_flag_source_errors_fail(world, unreadable, storage) -> None:
    ferry: ServerProcess = world["ferry"]
    sources = [f"{storage}:errs/a.txt", f"{storage}:errs/missing.txt", f"{storage}:errs/locked.txt"]
    files = submit(ferry, *sources, f"local:fail-files-{storage}")
    tree = submit(ferry, "--tree", f"{storage}:errs", f"local:fail-{storage}")
    alone = submit(ferry, f"{storage}:errs/missing.txt", f"local:fail-alone-{storage}")

    assert files["status"] == tree["status"] == "COMPLETED_WITH_ERRORS"
    assert alone["status"] == "FAILED"
    found = states(ferry, files["id"])
    assert found["errs/missing.txt"][0] == found["errs/locked.txt"][0] == "FAILED"
    found = states(ferry, tree["id"])
    assert found["errs/locked.txt"][0] == found["errs/shut"][0] == "FAILED"
