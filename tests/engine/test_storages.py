"""Path confinement on a local storage: symbolic links below the root are checked, a root
that is itself a link is followed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ferry.engine.mock import MockFileSystem
from ferry.engine.storages import check_health, open_storage, remembered_folders
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


def test_resolve_local_says_what_is_at_the_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"12345")
    (root / "inside").symlink_to(root / "d" / "f")
    (tmp_path / "secret").write_bytes(b"private")
    (root / "out").symlink_to(tmp_path / "secret")
    (root / "out-dir").symlink_to(tmp_path)
    storage = open_storage("s", f"file://{root}")

    full, status = storage.resolve_local("d/f")
    assert full == f"{root}/d/f"
    assert status is not None
    assert status.st_size == 5
    assert storage.resolve_local("d/missing") == (f"{root}/d/missing", None)
    assert storage.resolve_local("nothing/below") == (f"{root}/nothing/below", None)
    _full, link = storage.resolve_local("inside")
    assert link is not None
    assert stat.S_ISLNK(link.st_mode)  # the link itself: it stays inside
    with pytest.raises(PathOutsideStorage):
        storage.resolve_local("out")
    with pytest.raises(PathOutsideStorage):
        storage.resolve_local("out-dir/secret")
    with pytest.raises(PathOutsideStorage):
        storage.resolve_local("../escape")


def _counting_lstat(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    looked: list[str] = []
    real = os.lstat

    def lstat(path: str) -> os.stat_result:
        looked.append(path)
        return real(path)

    monkeypatch.setattr(os, "lstat", lstat)
    return looked


def test_a_batch_looks_at_each_folder_once_and_a_check_made_again_looks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    for name in ("a", "b", "c"):
        (root / "d" / name).write_bytes(b"x")
    storage = open_storage("s", root.as_uri())
    looked = _counting_lstat(monkeypatch)

    with remembered_folders():
        for name in ("a", "b", "c"):
            assert storage.resolve_local(f"d/{name}")[1] is not None
        assert looked == [f"{root}/d", f"{root}/d/a", f"{root}/d/b", f"{root}/d/c"]
        (root / "d").rename(tmp_path / "moved")
        (root / "d").symlink_to(outside)  # replaced by a link meanwhile
        with pytest.raises(PathOutsideStorage):
            storage.resolve("d/a")  # the check made again on purpose is not remembered
    looked.clear()
    with pytest.raises(PathOutsideStorage):
        storage.resolve_local("d/a")  # nor is anything once the batch is over
    assert looked[0] == f"{root}/d"


def test_in_a_remembered_folder_the_path_itself_is_still_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only folders are remembered: an object in one is looked at each time, so a link there
    that leads out is refused, one that stays inside is seen as a link, and a folder below
    that is new to the batch is walked."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d" / "e").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "a").write_bytes(b"a")
    (root / "d" / "e" / "b").write_bytes(b"b")
    (outside / "secret").write_bytes(b"s")
    (root / "d" / "out").symlink_to(outside / "secret")
    (root / "d" / "in").symlink_to(root / "d" / "a")
    storage = open_storage("s", root.as_uri())
    looked = _counting_lstat(monkeypatch)

    with remembered_folders():
        assert storage.resolve_local("d/a")[1] is not None
        assert looked == [f"{root}/d", f"{root}/d/a"]
        looked.clear()
        with pytest.raises(PathOutsideStorage):
            storage.resolve_local("d/out")
        assert looked[0] == f"{root}/d/out"  # then the link's target, from /
        looked.clear()
        link = storage.resolve_local("d/in")[1]
        assert link is not None
        assert stat.S_ISLNK(link.st_mode)
        assert looked[0] == f"{root}/d/in"
        looked.clear()
        assert storage.resolve_local("d/e/b")[1] is not None
        assert storage.resolve_local("d/e/missing") == (f"{root}/d/e/missing", None)
        assert looked == [f"{root}/d/e", f"{root}/d/e/b", f"{root}/d/e/missing"]


def test_folders_one_storage_has_seen_vouch_for_nothing_in_another(tmp_path: Path) -> None:
    """A storage whose root is a linked folder inside another's: the folders seen below its
    root say nothing of the link on the way down to them from the outer storage's root."""
    outer, outside = tmp_path / "data", tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    outer.mkdir()
    (outer / "sub").symlink_to(outside)
    (outside / "d" / "s.txt").write_bytes(b"s")
    big = open_storage("big", outer.as_uri())
    sub = open_storage("sub", (outer / "sub").as_uri())

    with remembered_folders():
        assert sub.resolve_local("d/s.txt")[1] is not None  # inside sub: its own root
        with pytest.raises(PathOutsideStorage):
            big.resolve_local("sub/d/escaped.txt")
        with pytest.raises(PathOutsideStorage):
            big.resolve_local("sub/d/s.txt")


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
    link that leads into it, whatever the way in (``resolve``, or a batch's ``resolve_local``)."""
    root = tmp_path / "root"
    (root / ".ferry").mkdir(parents=True)
    (root / ".ferry" / "admin.token").write_text("secret")
    (root / "mine").mkdir()
    (root / "mine" / "leak").symlink_to(root / ".ferry" / "admin.token")
    (root / "box").symlink_to(root / ".ferry")
    (root / ".ferryless").mkdir()
    storage = open_storage("s", root.as_uri(), protected=(".ferry",))

    for path in (".ferry", ".ferry/admin.token", "mine/leak", "box/new", "x/../.ferry/ferry.db"):
        with pytest.raises(ProtectedPath):
            storage.resolve(path)
        with remembered_folders(), pytest.raises(ProtectedPath):
            storage.resolve_local(path)
    assert storage.resolve(".ferryless/a") == f"{root}/.ferryless/a"
    assert storage.resolve_local("mine/new")[0] == f"{root}/mine/new"
    assert open_storage("s", root.as_uri()).resolve("mine/leak") == f"{root}/mine/leak"


@pytest.mark.parametrize("path", ["..#", "..?x", "a/..#/b", "index.html?download"])
def test_a_web_storage_refuses_what_would_end_its_url_path(path: str) -> None:
    storage = open_storage("web", "http://127.0.0.1:9/data")
    with pytest.raises(PathOutsideStorage):
        storage.resolve(path)
