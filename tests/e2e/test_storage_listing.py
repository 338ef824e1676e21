"""``ferry ls STORAGE:PATH``: what a storage holds, listed by a real server from the local disk
and a real SFTP server, as a transfer of the caller's scope would read it: sorted entries with
size and mtime, pages, a file by itself, the server's data directory never shown, and a scope
without the read grant refused."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from e2e_support import ServerProcess, launch, shutdown
from storage_servers import sftp_server

MTIME = 1_700_000_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with its local storage and an SFTP one, both holding ``data``: files a.bin
    (10 bytes), b.txt (3), a folder sub/ and 25 files in many/."""
    base = tmp_path_factory.mktemp("listing")
    with ExitStack() as stack:
        sftp = stack.enter_context(sftp_server(base / "sftp"))
        ferry = launch(base / "ferry")
        stack.callback(shutdown, ferry)
        answer = ferry.api("POST", "/api/v1/storages", json=sftp.registration("remote"))
        assert answer.status_code == 201, answer.text
        for root in (ferry.cwd, base / "sftp" / "root"):
            (root / "data" / "sub").mkdir(parents=True)
            (root / "data" / "a.bin").write_bytes(b"0123456789")
            (root / "data" / "b.txt").write_bytes(b"abc")
            os.utime(root / "data" / "a.bin", (MTIME, MTIME))
            (root / "data" / "many").mkdir()
            for number in range(25):
                (root / "data" / "many" / f"f{number:02}").write_bytes(b"x" * number)
        yield {"ferry": ferry}


def listed(server: ServerProcess, *args: str) -> list[dict[str, Any]]:
    result = server.cli("ls", *args, "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("storage", ["local", "remote"])
def test_a_folder_is_listed_by_name_with_sizes_and_times(world, storage: str) -> None:
    entries = listed(world["ferry"], f"{storage}:data")
    assert [(e["name"], e["folder"], e["size"]) for e in entries] == [
        ("a.bin", False, 10),
        ("b.txt", False, 3),
        ("many", True, None),
        ("sub", True, None),
    ]
    assert entries[0]["mtime"] == MTIME
    (only,) = listed(world["ferry"], f"{storage}:data/a.bin")
    assert (only["name"], only["size"], only["folder"]) == ("a.bin", 10, False)


@pytest.mark.parametrize("storage", ["local", "remote"])
def test_a_long_folder_comes_in_pages(world, storage: str) -> None:
    server = world["ferry"]
    first = listed(server, f"{storage}:data/many", "--limit", "10")
    assert [e["name"] for e in first] == [f"f{n:02}" for n in range(10)]
    every = listed(server, f"{storage}:data/many", "--limit", "10", "--all")
    assert [e["name"] for e in every] == [f"f{n:02}" for n in range(25)]
    assert [e["size"] for e in every] == list(range(25))
    shown = server.cli("ls", f"{storage}:data/many", "--limit", "10")
    assert shown.returncode == 0
    assert "f09" in shown.stdout
    assert "f10" not in shown.stdout
    assert "more after 'f09'" in shown.stdout


def test_the_servers_own_data_directory_is_never_shown(world) -> None:
    server = world["ferry"]
    assert (server.cwd / ".ferry").is_dir()  # the data directory, inside local's root
    names = [e["name"] for e in listed(server, "local:")]
    assert "data" in names
    assert ".ferry" not in names
    refused = server.cli("ls", "local:.ferry")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("local:data/missing", "error: not found: local:data/missing"),
        ("local:../etc", "error: "),
        ("nowhere:data", "error: "),
    ],
)
def test_what_cannot_be_listed_is_one_line(world, location: str, message: str) -> None:
    result = world["ferry"].cli("ls", location)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), result.stderr


def test_a_scope_lists_only_what_it_may_read(world) -> None:
    server = world["ferry"]
    server.cli("scope", "set", "lab", "--weight", "1", check=True)
    added = server.cli_json("user", "add", "lena", "--role", "READ", "--scope", "lab")
    token = added["token"]["token"]
    refused = server.cli("ls", "local:data", "--scope", "lab", "--token", token)
    assert refused.returncode == 1
    assert "scope 'lab' may not read storage 'local'" in refused.stderr
    other = server.cli("ls", "local:data", "--scope", "default", "--token", token)
    assert "may not submit into scope 'default'" in other.stderr
    server.cli("storage", "grant", "local", "--scope", "lab", "--read", check=True)
    granted = server.cli("ls", "local:data", "--scope", "lab", "--token", token, "--json")
    assert granted.returncode == 0, granted.stderr
    assert [e["name"] for e in json.loads(granted.stdout)][:2] == ["a.bin", "b.txt"]
    response = server.api(
        "GET", "/api/v1/storages/local/entries", params={"path": "data"}, headers={}
    )
    assert response.status_code == 200
    anonymous = server.api(
        "GET",
        "/api/v1/storages/local/entries",
        params={"path": "data"},
        headers={"Authorization": "Bearer nope"},
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
