"""A tree of 1,000 files through a real server and its agents, checked byte for byte."""

from __future__ import annotations

import hashlib
import os
import random
import zlib
from pathlib import Path

from ferry.engine.trees import LINK_OUTSIDE, LINK_TO_FOLDER

NAMES = ["data", "Données", "日本語", "with space", "ünïcødé", "a/b/c", "deep/er/still/more"]


def make_tree(root: Path, count: int = 1000) -> None:
    """``count`` files in nested folders: one empty, one of 50 MB, the rest of mixed sizes,
    names with spaces and non-ASCII letters."""
    rng = random.Random(20261123)
    (root / "empty file").parent.mkdir(parents=True, exist_ok=True)
    (root / "empty file").write_bytes(b"")
    (root / "big" / "fifty MB.bin").parent.mkdir(parents=True)
    (root / "big" / "fifty MB.bin").write_bytes(os.urandom(50 * 1024 * 1024))
    for i in range(count - 2):
        folder = root / rng.choice(NAMES) / f"part {i % 13}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([1, 17, 512, 4096, 10_000, 65_536, 200_000])
        (folder / f"fichier é {i}.dat").write_bytes(rng.randbytes(size))


def digest_tree(root: Path) -> dict[str, str]:
    """Relative path → sha256, by an independent walk of the file system."""
    digests = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_a_tree_arrives_whole_and_every_object_is_accounted_for(start_server) -> None:
    server = start_server()
    make_tree(server.cwd / "src")

    transfer = server.cli_json("submit", "--tree", "--wait", "local:src", "local:dst")

    assert transfer["status"] == "COMPLETED"
    assert transfer["objects"]["total"] == transfer["objects"]["done"] == 1000
    source, copied = digest_tree(server.cwd / "src"), digest_tree(server.cwd / "dst")
    assert len(source) == 1000
    assert copied == source
    assert transfer["bytes"] == sum(
        p.stat().st_size for p in (server.cwd / "src").rglob("*") if p.is_file()
    )

    outcomes = server.cli_json("outcomes", transfer["id"])
    assert outcomes["transfer"] == transfer["id"]
    assert outcomes["status"] == "COMPLETED"
    assert len(outcomes["objects"]) == 1000
    for obj in outcomes["objects"]:
        data = (server.cwd / obj["source"].removeprefix("local:")).read_bytes()
        assert obj["status"] == "DONE"
        assert obj["size"] == len(data)
        assert obj["checksum"] == f"adler32:{zlib.adler32(data):08x}"
        assert obj["attempts"] == 1
        assert obj["error"] is None


def test_nothing_of_a_tree_is_dropped_without_a_word(module_server, tmp_path) -> None:
    """Defect 18.14: a tree's links leading out of the storage, and its empty folders,
    vanished from the copy and from the outcomes. Empty folders are made; links not followed
    are SKIPPED with the reason; every SKIPPED object says why."""
    root = module_server.cwd / "linked"
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / "kept.txt").write_text("kept")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("not in the storage")
    (root / "out-link").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "folder-link").symlink_to(root / "empty")

    first = module_server.cli_json("submit", "--tree", "--wait", "local:linked", "local:copied")
    again = module_server.cli_json("submit", "--tree", "--wait", "local:linked", "local:copied")

    assert first["status"] == again["status"] == "COMPLETED"
    copied = module_server.cwd / "copied"
    assert (copied / "empty" / "deeper").is_dir()
    assert sorted(p.name for p in copied.iterdir()) == ["empty", "kept.txt"]
    objects = {
        o["source"].removeprefix("local:linked/"): (o["status"], o["error"])
        for o in module_server.cli_json("outcomes", first["id"])["objects"]
    }
    assert objects == {
        "empty/deeper": ("DONE", None),
        "kept.txt": ("DONE", None),
        "out-link": (
            "SKIPPED",
            LINK_OUTSIDE,
        ),
        "folder-link": ("SKIPPED", LINK_TO_FOLDER),
    }
    skipped = module_server.cli_json("outcomes", again["id"])["objects"]
    reasons = {o["source"].removeprefix("local:linked/"): o["error"] for o in skipped}
    assert reasons["kept.txt"] == "the destination exists (overwrite: never)"
    assert all(o["status"] in ("SKIPPED", "DONE") for o in skipped)
    assert all(o["error"] for o in skipped if o["status"] == "SKIPPED")
