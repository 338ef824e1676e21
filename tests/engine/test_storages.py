"""Path confinement on a local storage: symbolic links below the root are checked, a root
that is itself a link is followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferry.engine.mock import MockFileSystem
from ferry.engine.storages import (
    batch_folders,
    check_health,
    close_folders,
    open_storage,
    remembered_folders,
)
from ferry.errors import PathOutsideStorage, ProtectedPath


def test_a_root_that_is_a_link_resolves_paths_inside_it(tmp_path: Path) -> None:
    (tmp_path / "real" / "data").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    storage = open_storage("local", (tmp_path / "alias").as_uri())

    assert storage.resolve("data/a.bin") == f"{tmp_path}/alias/data/a.bin"
    assert storage.resolve("not/yet/there.bin") == f"{tmp_path}/alias/not/yet/there.bin"


@pytest.mark.parametrize("depth", ["out", "out/deeper"])
def test_a_link_below_the_root_that_leads_out_is_refused_at_any_depth(
    tmp_path: Path, depth: str
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (root / "in").mkdir(parents=True)
    (root / "in" / "out").symlink_to(outside)
    storage = open_storage("local", root.as_uri())

    with pytest.raises(PathOutsideStorage):
        storage.resolve(f"in/{depth}/a.bin")


def test_a_link_below_the_root_that_stays_inside_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "target").mkdir(parents=True)
    (root / "alias").symlink_to(root / "target")
    storage = open_storage("local", root.as_uri())

    assert storage.resolve("alias/a.bin") == f"{root}/alias/a.bin"


@pytest.mark.parametrize(
    ("url", "may_stall"),
    [
        ("file:///tmp", False),
        ("memory://bucket", False),
        ("mock://mk", False),
        ("http://127.0.0.1:9/data", True),
        ("s3://bucket/data", True),
    ],
)
def test_only_reads_from_outside_the_process_can_stall(url: str, may_stall: bool) -> None:
    assert open_storage("s", url).reads_may_stall is may_stall


def test_a_health_check_looks_at_the_root_without_listing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def listed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the health check listed the root")

    monkeypatch.setattr(MockFileSystem, "ls", listed)
    health = check_health("many", "mock://many", {"files": 1_000_000})
    assert (health["reachable"], health["error"]) == (True, None)


def test_the_protected_paths_are_refused_by_name_and_through_links(tmp_path: Path) -> None:
    """The server's data directory inside a storage: neither it nor anything inside it, nor a
    link that leads into it (``confined`` refuses by name; ``resolve`` by name and by where
    links lead)."""
    root = tmp_path / "root"
    (root / ".ferry").mkdir(parents=True)
    (root / ".ferry" / "admin.token").write_text("secret")
    (root / "mine").mkdir()
    (root / "mine" / "leak").symlink_to(root / ".ferry" / "admin.token")
    (root / "box").symlink_to(root / ".ferry")
    (root / ".ferryless").mkdir()
    storage = open_storage("s", root.as_uri(), protected=(".ferry",))

    for path in (".ferry", ".ferry/admin.token", "x/../.ferry/ferry.db"):
        with pytest.raises(ProtectedPath):
            storage.confined(path)
    for path in (".ferry", ".ferry/admin.token", "mine/leak", "box/new", "x/../.ferry/ferry.db"):
        with pytest.raises(ProtectedPath):
            storage.resolve(path)
    assert storage.confined("mine/leak") == "mine/leak"  # a link: left to whoever follows it
    assert storage.resolve(".ferryless/a") == f"{root}/.ferryless/a"
    assert open_storage("s", root.as_uri()).resolve("mine/leak") == f"{root}/mine/leak"


def test_a_folder_is_reached_without_following_a_link(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d" / "e").mkdir(parents=True)
    outside.mkdir()
    (root / "alias").symlink_to(root / "d")  # inside, but a link
    (root / "out").symlink_to(outside)
    (root / "file").write_text("f")
    storage = open_storage("s", root.as_uri())
    opened: dict[tuple[str, str], int] = {}
    try:
        found = storage.folder_at("d/e", opened, create=False)
        assert found is not None
        assert os.path.samestat(os.fstat(found), os.stat(root / "d" / "e"))
        assert storage.folder_at("d/e", opened, create=False) == found  # kept, not reopened
        for relative in ("alias", "alias/x", "out", "out/x", "file/x"):
            assert storage.folder_at(relative, opened, create=True) is None
        assert storage.folder_at("missing/x", opened, create=False) is None
        assert not (root / "missing").exists()
        made = storage.folder_at("new/deeper", opened, create=True)
        assert made is not None
        assert os.path.samestat(os.fstat(made), os.stat(root / "new" / "deeper"))
    finally:
        close_folders(opened)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (root / "d").iterdir()) == ["e"]


def test_a_batch_keeps_its_folders_open_until_it_ends(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d" / "e").mkdir(parents=True)
    storage = open_storage("s", root.as_uri())
    before = len(os.listdir("/proc/self/fd"))
    with remembered_folders():
        opened = batch_folders()
        assert opened is not None
        held = storage.folder_at("d/e", opened, create=False)
        assert held is not None
        assert len(os.listdir("/proc/self/fd")) == before + 3  # the root, d and d/e
    assert batch_folders() is None
    assert len(os.listdir("/proc/self/fd")) == before  # closed with the batch


@pytest.mark.parametrize("path", ["..#", "..?x", "a/..#/b", "index.html?download"])
def test_a_web_storage_refuses_what_would_end_its_url_path(path: str) -> None:
    storage = open_storage("web", "http://127.0.0.1:9/data")
    with pytest.raises(PathOutsideStorage):
        storage.resolve(path)
