"""``ferry copy``: a transfer done by the command line alone, with no server, on real local
and SFTP storages: the same placement, checks and rules as a transfer's, a summary or every
object's end as JSON, exit 1 with the failures listed, and Ctrl-C leaving nothing partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from e2e_support import FERRY, wait_for
from storage_servers import sftp_server


def ferry_copy(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FERRY, "copy", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def copied(cwd: Path, *args: str) -> dict[str, Any]:
    result = ferry_copy(cwd, *args, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha\n", "d/b.bin": os.urandom(70_000), "d/e/c.txt": b"gamma" * 1000}
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    (root / "empty").mkdir()
    return files


def _parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def test_a_tree_is_copied_verified_and_a_second_copy_skips_it(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    report = copied(tmp_path, "--tree", "local:src", "local:out")
    assert report["status"] == "COMPLETED"
    assert (
        report["objects"]["done"] == report["objects"]["total"] == 4
    )  # 3 files and the empty folder
    assert report["bytes"] == sum(len(data) for data in files.values())
    for relative, data in files.items():
        assert (tmp_path / "out" / relative).read_bytes() == data
        (outcome,) = [o for o in report["outcomes"] if o["destination"] == f"local:out/{relative}"]
        assert outcome["checksum"] == f"adler32:{zlib.adler32(data):08x}"
        assert outcome["attempts"] == 1
    assert (tmp_path / "out" / "empty").is_dir()
    again = copied(tmp_path, "--tree", "local:src", "local:out")
    assert again["objects"]["skipped"] == 3
    assert again["bytes"] == 0
    assert _parts(tmp_path) == []


def test_files_go_into_the_folder_and_a_failure_is_listed_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("one")
    (tmp_path / "two.txt").write_text("two")
    result = ferry_copy(tmp_path, "local:one.txt", "local:missing.txt", "local:two.txt", "local:in")
    assert result.returncode == 1
    assert result.stdout.startswith(
        "COMPLETED_WITH_ERRORS: 2 copied (6 bytes), 0 skipped, 1 failed"
    )
    assert result.stderr.strip() == (
        "FAILED local:missing.txt → local:in/missing.txt: not found: local:missing.txt"
    )
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["one.txt", "two.txt"]


def test_filters_leave_out_entries_and_say_how_many(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    report = copied(tmp_path, "--tree", "--include", "*.txt", "local:src", "local:out")
    names = sorted(o["destination"] for o in report["outcomes"] if o["status"] == "DONE")
    assert "local:out/a.txt" in names
    assert "local:out/d/e/c.txt" in names
    assert not (tmp_path / "out" / "d" / "b.bin").exists()
    assert report["objects"]["filtered"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nowhere:a", "local:out"],
            "error: unknown storage 'nowhere': give --storage nowhere=URL",
        ),
        (["--storage", "bad", "local:a", "local:out"], "error: --storage 'bad': expected NAME=URL"),
        (["--include", "*.txt", "local:a", "local:out"], "error: filters apply to tree copies"),
        (["local:../etc/passwd", "local:out"], "error: "),
        (["local:a"], "error: give at least one SOURCE and a DEST"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    result = ferry_copy(tmp_path, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), result.stderr
    assert not (tmp_path / "out").exists()


def test_to_and_from_sftp_with_storages_from_a_config_file(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    with sftp_server(tmp_path / "sshd") as sftp:
        port = sftp.url.split(":")[2].split("/")[0]
        host_key = (tmp_path / "sshd" / "host_key.pub").read_text().split()[:2]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
        config = tmp_path / "copy.toml"
        config.write_text(
            "[storages.remote]\n"
            f'url = "{sftp.url}"\n'
            "[storages.remote.options]\n"
            f'username = "{sftp.options["username"]}"\n'
            f'known_hosts = "{known}"\n'
            f'client_keys = ["{sftp.credentials["client_keys"][0]}"]\n'
        )
        up = copied(tmp_path, "--config", str(config), "--tree", "local:src", "remote:up")
        assert up["status"] == "COMPLETED"
        assert up["objects"]["done"] == 4
        down = copied(tmp_path, "--config", str(config), "--tree", "remote:up", "local:down")
        assert down["status"] == "COMPLETED"
        remote_root = Path(sftp.url.split(port, 1)[1])
    for relative, data in files.items():
        assert (remote_root / "up" / relative).read_bytes() == data
        assert (tmp_path / "down" / relative).read_bytes() == data
    assert _parts(tmp_path) == []


def test_ctrl_c_stops_the_copy_and_leaves_no_partial_file(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    copying = subprocess.Popen(
        [
            *FERRY,
            "copy",
            "--json",
            "--bandwidth",
            "1M",
            "--checksum",
            "none",
            "local:big.bin",
            "local:out",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _parts(tmp_path / "out") if (tmp_path / "out").exists() else [])
        copying.send_signal(signal.SIGINT)
        out, err = copying.communicate(timeout=60)
    finally:
        if copying.poll() is None:
            copying.kill()
    assert copying.returncode == 1, err
    (outcome,) = json.loads(out)["outcomes"]
    assert outcome["status"] == "CANCELED"
    assert _parts(tmp_path) == []
    assert not (tmp_path / "out" / "big.bin").exists()


def test_ctrl_c_at_a_terminal_stops_the_copy_processes_of_a_tree(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: the copy processes leave it to
    their parent, which stops the copy; what did not start ends CANCELED, nothing partial is
    left, and no process of the copy outlives it."""
    for number in range(20_000):
        folder = tmp_path / "src" / f"d{number % 20:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number:05}").write_bytes(b"x" * 1024)
    command = [*FERRY, "copy", "--json", "--tree", "--processes", "2", "local:src", "local:out"]
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as copying:
        try:
            wait_for(lambda: len(list((tmp_path / "out").rglob("f*"))) >= 200, interval=0.01)
            os.killpg(copying.pid, signal.SIGINT)
            out, err = copying.communicate(timeout=60)
        finally:
            if copying.poll() is None:
                copying.kill()
    assert copying.returncode == 1, err
    report = json.loads(out)
    counts = report["objects"]
    assert counts["done"] >= 200
    assert counts["canceled"] > 0
    assert counts["done"] + counts["canceled"] == counts["total"]
    assert len(list((tmp_path / "out").rglob("f*"))) == counts["done"]
    assert _parts(tmp_path) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(copying.pid, 0)  # none of the copy's processes is left


def agent_stdin(cwd: Path, body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FERRY, "agent", "--stdin"],
        cwd=cwd,
        input=body,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_agent_does_one_request_from_standard_input(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    body = {
        "sources": ["local:src"],
        "destination": "local:out",
        "kind": "tree",
        "options": {"checksum": "sha256", "filters": {"rules": ["- *.bin"]}},
    }
    result = agent_stdin(tmp_path, json.dumps(body))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "COMPLETED"
    assert report["objects"]["filtered"] == 1
    done = {o["destination"]: o["checksum"] for o in report["outcomes"] if o["status"] == "DONE"}
    assert done["local:out/a.txt"].startswith("sha256:")
    assert (tmp_path / "out" / "d" / "e" / "c.txt").read_bytes() == files["d/e/c.txt"]
    assert not (tmp_path / "out" / "d" / "b.bin").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "error: the request on standard input: body: Invalid JSON"),
        ('{"sources": []}', "error: the request on standard input: sources: "),
        (
            '{"sources": ["local:a"], "destination": "local:o", "schedule": {"kind": "at",'
            ' "at": "+10m"}}',
            "error: a request on standard input is done now: give it no schedule",
        ),
        (
            '{"sources": [["local:a", "local:b"]], "destination": "local:o"}',
            "error: a request on standard input takes no replicas",
        ),
    ],
)
def test_a_bad_request_on_standard_input_is_one_line(
    tmp_path: Path, body: str, message: str
) -> None:
    result = agent_stdin(tmp_path, body)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), result.stderr
    assert result.stdout == ""
