"""``ferry push`` and ``ferry pull`` against a real server: a 100 MB file and a 500-file tree
arrive whole (checked by sha256, independently of ferry's own adler32), and a push killed
half-way leaves nothing at its destination and completes when run again."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from e2e_support import FERRY, ServerProcess, wait_for

MIB = 1024 * 1024
FOLDERS = ["data", "Données", "日本語/深い", "with space", "a/b/c/d"]


def write_random(path: Path, size: int) -> str:
    """A file of ``size`` random bytes written in chunks; its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for start in range(0, size, 8 * MIB):
            chunk = os.urandom(min(8 * MIB, size - start))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def make_tree(root: Path, count: int) -> None:
    """``count`` files in nested folders, mixed sizes: an empty one, a non-ASCII name, a name
    with a space."""
    rng = random.Random(500)
    root.mkdir(parents=True)
    (root / "empty").write_bytes(b"")
    (root / "naïve café 日本.txt").write_bytes(b"non-ASCII\n")
    (root / "with space" / "a name with spaces.bin").parent.mkdir(parents=True)
    (root / "with space" / "a name with spaces.bin").write_bytes(rng.randbytes(3 * MIB))
    for i in range(count - 3):
        folder = root / rng.choice(FOLDERS) / f"part {i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([1, 100, 4096, 65_536, 300_000])
        (folder / f"fichier é {i}.dat").write_bytes(rng.randbytes(size))


def digest_tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file, by an independent walk."""
    digests = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            digests[path.relative_to(root).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return digests


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def adler32_of(path: Path) -> str:
    value = 1
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            value = zlib.adler32(block, value)
    return f"adler32:{value:08x}"


def outcomes_by(server: ServerProcess, transfer_id: str, side: str) -> dict[str, dict[str, Any]]:
    """The transfer's objects by their client-side path (``side``: source or destination)."""
    found = server.cli_json("outcomes", transfer_id)
    assert found["status"] == "COMPLETED"
    objects = {o[side].removeprefix("client:"): o for o in found["objects"]}
    assert len(objects) == len(found["objects"])
    return objects


def check_outcomes(objects: dict[str, dict[str, Any]], local: Path) -> None:
    """Every object DONE, its checksum the adler32 of the local file."""
    for name, obj in objects.items():
        path = local / name
        assert obj["status"] == "DONE", obj
        assert obj["error"] is None
        assert obj["bytes"] == path.stat().st_size
        assert obj["checksum"] == adler32_of(path), name


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")] if folder.exists() else []


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> ServerProcess:
    return module_server


def test_a_100_mb_file_is_pushed_and_pulled_whole(server, tmp_path) -> None:
    source = tmp_path / "hundred MB é.bin"
    expected = write_random(source, 100 * MIB)

    pushed = server.cli_json("push", str(source), "local:big/in")

    assert pushed["status"] == "COMPLETED"
    assert pushed["objects"]["done"] == pushed["objects"]["total"] == 1
    assert pushed["bytes"] == 100 * MIB
    arrived = server.cwd / "big" / "in" / source.name
    assert sha256_of(arrived) == expected
    assert sorted(p.name for p in arrived.parent.iterdir()) == [source.name]
    check_outcomes(outcomes_by(server, pushed["id"], "source"), tmp_path)

    pulled = server.cli_json("pull", f"local:big/in/{source.name}", str(tmp_path / "back"))

    assert pulled["status"] == "COMPLETED"
    assert pulled["objects"]["done"] == pulled["objects"]["total"] == 1
    assert pulled["bytes"] == 100 * MIB
    assert sha256_of(tmp_path / "back" / source.name) == expected
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == [source.name]
    check_outcomes(outcomes_by(server, pulled["id"], "destination"), tmp_path / "back")


def test_a_500_file_tree_is_pushed_and_pulled_whole(server, tmp_path) -> None:
    make_tree(tmp_path / "tree", 500)
    expected = digest_tree(tmp_path / "tree")
    assert len(expected) == 500

    pushed = server.cli_json("push", "--tree", str(tmp_path / "tree"), "local:trees/in")

    assert pushed["status"] == "COMPLETED"
    assert pushed["objects"]["done"] == pushed["objects"]["total"] == 500
    assert digest_tree(server.cwd / "trees" / "in") == expected
    pushed_objects = outcomes_by(server, pushed["id"], "source")
    assert set(pushed_objects) == set(expected)
    check_outcomes(pushed_objects, tmp_path / "tree")

    pulled = server.cli_json("pull", "local:trees/in", str(tmp_path / "back"))

    assert pulled["status"] == "COMPLETED"
    assert pulled["objects"]["done"] == pulled["objects"]["total"] == 500
    assert digest_tree(tmp_path / "back") == expected
    pulled_objects = outcomes_by(server, pulled["id"], "destination")
    assert set(pulled_objects) == set(expected)
    check_outcomes(pulled_objects, tmp_path / "back")

    again = server.cli("pull", "local:trees/in", str(tmp_path / "back"))
    assert again.returncode == 0, again.stderr
    assert "(0 moved, 500 already there, 0 failed; 0 bytes)" in again.stdout


def test_a_push_killed_half_way_leaves_nothing_and_completes_when_run_again(
    server, tmp_path
) -> None:
    source = tmp_path / "three hundred.bin"
    expected = write_random(source, 300 * MIB)
    destination = server.cwd / "killed"
    command = [*FERRY, "push", str(source), "local:killed"]
    client = subprocess.Popen(
        command, cwd=server.cwd, env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        def writing() -> list[Path]:
            assert client.poll() is None, client.communicate()
            return [p for p in temporaries(destination) if p.stat().st_size > 0]

        (part,) = wait_for(writing, timeout=30, interval=0.005)
        client.send_signal(signal.SIGSTOP)  # from here on, nothing more is sent
        assert part.name.startswith(f".{source.name}.ferry-")
        assert part.stat().st_size < source.stat().st_size
        assert not (destination / source.name).exists()
    finally:
        client.kill()
        client.communicate(timeout=30)

    wait_for(lambda: destination.exists() and not list(destination.iterdir()), timeout=30)
    killed = next(
        t
        for t in server.api("GET", "/api/v1/transfers").json()["items"]
        if t["destination"] == "local:killed"
    )

    def interrupted() -> dict[str, Any] | None:
        (obj,) = server.cli_json("outcomes", killed["id"])["objects"]
        return obj if obj["history"] and obj["history"][-1]["state"] == "FAILED" else None

    attempt = wait_for(interrupted, timeout=30)["history"][-1]
    assert attempt["error"] == f"local:killed/{source.name}: the client stopped sending"

    rerun = server.cli_json("push", str(source), "local:killed")

    assert rerun["status"] == "COMPLETED"
    assert rerun["objects"]["done"] == 1
    assert sorted(p.name for p in destination.iterdir()) == [source.name]
    assert sha256_of(destination / source.name) == expected


def test_a_push_whose_connection_drops_leaves_nothing(server, tmp_path) -> None:
    data = os.urandom(24 * MIB)
    created = server.api(
        "POST",
        "/api/v1/transfers/push",
        json={"destination": "local:dropped", "objects": [{"name": "x.bin", "size": len(data)}]},
    ).json()
    path = f"{server.url}/api/v1/transfers/{created['transfer']['id']}/data/{quote('x.bin')}"
    headers = {
        "X-Ferry-Capability": created["capability"],
        "X-Ferry-Checksum": f"adler32:{zlib.adler32(data):08x}",
        "X-Ferry-Size": str(len(data)),
    }
    destination = server.cwd / "dropped"

    def half_then_gone() -> Iterator[bytes]:
        for start in range(0, len(data) // 2, MIB):
            yield data[start : start + MIB]
        wait_for(lambda: [p for p in temporaries(destination) if p.stat().st_size], timeout=30)
        raise ConnectionAbortedError("the client goes away")

    with pytest.raises(ConnectionAbortedError):
        httpx.put(path, content=half_then_gone(), headers=headers, timeout=30)

    wait_for(lambda: not list(destination.iterdir()), timeout=30)

    def interrupted() -> dict[str, Any] | None:
        (obj,) = server.cli_json("outcomes", created["transfer"]["id"])["objects"]
        return obj if obj["history"] and obj["history"][-1]["state"] == "FAILED" else None

    attempt = wait_for(interrupted, timeout=30)["history"][-1]
    assert attempt["error"] == "local:dropped/x.bin: the client stopped sending"
    done = httpx.put(path, content=data, headers=headers, timeout=30)
    assert done.json()["state"] == "DONE", done.text
    closed = httpx.post(
        f"{server.url}/api/v1/transfers/{created['transfer']['id']}/close",
        headers={"X-Ferry-Capability": created["capability"]},
        timeout=30,
    )
    assert closed.json()["not_transferred"] == 0
    assert (destination / "x.bin").read_bytes() == data
    assert [p.name for p in destination.iterdir()] == ["x.bin"]
