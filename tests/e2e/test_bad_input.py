"""Bad input through the real server and the CLI: a clear error, a non-zero exit, no output."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from e2e_support import wait_for

from ferry.engine.trees import LINK_OUTSIDE


def snapshot(root: Path) -> set[str]:
    """Every path under ``root`` but the server's own data directory."""
    paths = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".ferry"]
        paths |= {str(Path(folder, name).relative_to(root)) for name in dirs + files}
    return paths


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["local:../x", "local:dst"], "outside storage"),
        (["local:/etc/passwd", "local:dst"], "outside storage"),
        (["local:a.txt", "local:../../escape"], "outside storage"),
        (["elsewhere:a.txt", "local:dst"], "not registered"),
        (["a.txt", "local:dst"], "STORAGE:PATH"),
        (["local:a.txt"], "SOURCE"),
    ],
)
def test_refused_submissions_write_nothing(module_server, args, needle) -> None:
    (module_server.cwd / "a.txt").write_text("a")
    before = snapshot(module_server.cwd.parent)
    transfers_before = module_server.cli_json("ls")

    result = module_server.cli("submit", *args)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert snapshot(module_server.cwd.parent) == before
    assert module_server.cli_json("ls") == transfers_before


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 422),
        (b'{"sources": "local:a.txt", "destination": "local:dst"}', 422),
        (b'{"sources": ["local:a.txt"], "destination": "local:dst", "kind": "galaxy"}', 422),
        (b'{"sources": ["local:../a.txt"], "destination": "local:dst"}', 422),
        (b'{"sources": ["ghost:a.txt"], "destination": "local:dst"}', 422),
    ],
)
def test_malformed_bodies_get_problem_json(module_server, content, status) -> None:
    before = snapshot(module_server.cwd.parent)
    response = module_server.api(
        "POST", "/api/v1/transfers", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert response.json()["detail"]
    assert snapshot(module_server.cwd.parent) == before


def test_an_unreachable_server_is_one_line(module_server) -> None:
    result = module_server.cli("ls", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the server")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_token_is_one_line(module_server) -> None:
    result = module_server.cli("ls", "--token", "wrong")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown or revoked token"


@pytest.mark.parametrize("tree", [False, True])
def test_a_missing_source_fails_at_run_time(module_server, tree) -> None:
    before = snapshot(module_server.cwd.parent)
    args = ["--tree"] if tree else []

    result = module_server.cli("submit", *args, "--wait", "--json", "local:not-there", "local:dst")

    assert result.returncode == 1
    transfer = httpx.Response(200, content=result.stdout).json()
    assert transfer["status"] == "FAILED"
    assert "not found: local:not-there" in transfer["error"]
    (obj,) = module_server.cli_json("outcomes", transfer["id"])["objects"]
    assert obj["status"] == "FAILED"
    assert obj["error"] == "not found: local:not-there"
    assert snapshot(module_server.cwd.parent) == before


def test_the_data_directory_is_out_of_reach(start_server, tmp_path) -> None:
    server = start_server("--agents", "1", "--storage", f"parent={tmp_path.as_uri()}")
    (server.cwd / "keep.txt").write_text("keep")
    for args in (
        ["local:.ferry/admin.token", "local:stolen"],
        ["local:keep.txt", "local:.ferry"],
        ["--tree", "local:.ferry", "local:stolen"],
        ["parent:work0/.ferry/ferry.db", "parent:stolen"],
    ):
        result = server.cli("submit", *args)
        assert result.returncode == 1
        assert "inside the server's data directory" in result.stderr

    copied = server.cli_json(
        "submit", "--tree", "--wait", f"parent:{server.cwd.name}", "parent:copy"
    )

    assert copied["status"] == "COMPLETED"
    names = {p.name for p in (tmp_path / "copy").rglob("*")}
    assert "keep.txt" in names
    assert not names & {".ferry", "admin.token", "ferry.db"}


def test_nothing_inside_the_storage_leads_into_the_data_directory(start_server) -> None:
    """What the submission cannot see: a link inside a tree that leads into the data
    directory, an archive member named into it. The agent refuses each where it resolves it
    (the lease tells it the protected paths of each local storage)."""
    server = start_server("--agents", "1")
    token = (server.cwd / ".ferry" / "admin.token").read_text()
    (server.cwd / "mine").mkdir()
    (server.cwd / "mine" / "fine.txt").write_text("fine")
    (server.cwd / "mine" / "leak").symlink_to(server.cwd / ".ferry" / "admin.token")
    with zipfile.ZipFile(server.cwd / "bundle.zip", "w") as bundle:
        bundle.writestr(".ferry/admin.token", "not the token")

    copied = server.cli_json("submit", "--tree", "--wait", "local:mine", "local:out")
    unzip = server.cli("submit", "--unzip", "--wait", "--json", "local:bundle.zip", "local:")

    assert copied["status"] == "COMPLETED"  # the link is not followed, as one leading out is
    objects = server.cli_json("outcomes", copied["id"])["objects"]
    states = {o["source"]: (o["status"], o["error"]) for o in objects}
    assert states == {
        "local:mine/fine.txt": ("DONE", None),
        "local:mine/leak": (
            "SKIPPED",
            LINK_OUTSIDE,
        ),
    }
    assert (server.cwd / "out" / "fine.txt").read_text() == "fine"
    assert not (server.cwd / "out" / "leak").exists()
    assert unzip.returncode == 1
    unpacked = httpx.Response(200, content=unzip.stdout).json()
    (member,) = server.cli_json("outcomes", unpacked["id"])["objects"]
    assert member["status"] == "FAILED"
    assert "inside the server's data directory" in member["error"]
    assert (server.cwd / ".ferry" / "admin.token").read_text() == token


def test_a_tree_cannot_be_copied_into_itself_under_another_name(start_server, tmp_path) -> None:
    server = start_server("--agents", "0", "--storage", f"alias={(tmp_path / 'work0').as_uri()}")
    (server.cwd / "tree").mkdir()
    result = server.cli("submit", "--tree", "alias:tree", "local:tree/inner")
    assert result.returncode == 1
    assert "inside the source tree" in result.stderr


def test_long_paths_poison_no_agent(start_server) -> None:
    # Six sources of ~5,000 characters gave errors the server refused to take in a report, and
    # the agents sent the same batch for ever: a one-file transfer then never finished.
    server = start_server()
    (server.cwd / "a.txt").write_text("a")
    too_long = "local:" + "d/" * 2500
    refused = server.cli("submit", too_long, "local:out")
    assert refused.returncode == 1
    assert "4096" in refused.stderr
    assert len(refused.stderr) < 1000  # the limit is named, the path is not echoed back

    deep = "local:" + "d/" * 2030 + "missing.txt"  # just inside the limit: accepted, not there
    poisoned = [server.cli_json("submit", deep, "local:out") for _ in range(6)]
    started = time.monotonic()
    done = server.cli_json("submit", "--wait", "local:a.txt", "local:fine", timeout=60)
    assert done["status"] == "COMPLETED"
    assert time.monotonic() - started < 10
    for transfer in poisoned:
        ended = wait_for(
            lambda t=transfer: (
                (s := server.cli_json("status", t["id"]))["status"] == "FAILED" and s
            ),
            timeout=60,
        )
        (failure,) = server.cli_json("outcomes", ended["id"])["objects"]
        assert failure["status"] == "FAILED"
        assert failure["error"].startswith("not found") or "File name too long" in failure["error"]
        assert len(failure["error"]) <= 4000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--unzip-max-bytes", "1K"], "unzip_max_bytes applies only with unzip"),
        (["--unzip", "--unzip-max-bytes", "banana"], "'banana' is not a size"),
        (["--unzip", "--unzip-max-bytes", "0"], "at least 1"),
    ],
)
def test_an_expansion_limit_that_cannot_apply_is_refused(module_server, args, needle) -> None:
    (module_server.cwd / "a.zip").write_bytes(b"")
    result = module_server.cli("submit", *args, "local:a.zip", "local:out")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--checksum", "none"], "verify_source compares checksums: give a checksum, not none"),
        (["--unzip"], "verify_source applies to copies, not to unpacked archives"),
    ],
)
def test_verify_source_without_a_checksum_to_compare_is_refused(
    module_server, args, needle
) -> None:
    (module_server.cwd / "a.bin").write_bytes(b"x")
    result = module_server.cli("submit", "--verify-source", *args, "local:a.bin", "local:out")
    assert result.returncode == 1
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (module_server.cwd / "out").exists()


def test_an_archive_past_the_transfers_expansion_limit_fails_with_the_reason(module_server) -> None:
    """Defect 18.9: ``--unzip-max-bytes`` (a 204 kB zip became 200 MiB)."""
    with zipfile.ZipFile(module_server.cwd / "zeros.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("zeros.bin", bytes(1024 * 1024))
    waited = module_server.cli(
        *("submit", "--wait", "--json", "--unzip", "--unzip-max-bytes", "512K"),
        *("local:zeros.zip", "local:z"),
    )
    assert waited.returncode == 1  # --wait says how it ended
    transfer = json.loads(waited.stdout)
    assert transfer["status"] == "FAILED"
    (failure,) = module_server.cli_json("outcomes", transfer["id"])["objects"]
    assert "more than 524,288 bytes" in failure["error"]
    assert "--unzip-max-bytes" in failure["error"]
    assert not (module_server.cwd / "z" / "zeros.bin").exists()
