"""--delete-extra on a real local disk: which destination files are extras (both trees walked
side by side), and a deletion that never leaves the destination folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferry.engine.extras import delete_file, extras
from ferry.engine.storages import open_storage
from ferry.engine.trees import TreeEntry, walk_tree
from ferry.errors import PathOutsideStorage


def _write(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def _found(source: Path, destination: Path, keeps=lambda _e: True) -> list[str]:
    src = open_storage("src", source.as_uri())
    dst = open_storage("dst", destination.as_uri())
    listed = (e for page in walk_tree(src, "") for e in page)
    held = (e for page in walk_tree(dst, "") for e in page)
    return [entry.relative for entry in extras(listed, held, keeps)]


def test_extras_are_the_destination_files_the_source_lacks(tmp_path: Path) -> None:
    source, destination = tmp_path / "s", tmp_path / "d"
    _write(source, "a.txt", "b/c.txt", "b/d/e.txt", "z.txt")
    _write(destination, "a.txt", "a2.txt", "b/c.txt", "b/x.txt", "b/d/e.txt", "b/d/f/g.txt")
    _write(destination, "c/only.txt", "z.txt", "zz.txt")
    found = _found(source, destination)
    assert found == ["a2.txt", "zz.txt", "b/x.txt", "b/d/f/g.txt", "c/only.txt"]


def test_a_source_folder_that_cannot_be_listed_keeps_all_below_it(tmp_path: Path) -> None:
    source, destination = tmp_path / "s", tmp_path / "d"
    _write(source, "a.txt", "locked/in.txt")
    _write(destination, "a.txt", "locked/in.txt", "locked/more/x.txt", "other.txt")
    listed = [
        TreeEntry("a.txt", 1),
        TreeEntry("locked", 0, error="cannot list folder: Permission denied", denied=True),
    ]
    dst = open_storage("dst", destination.as_uri())
    held = (e for page in walk_tree(dst, "") for e in page)
    assert [e.relative for e in extras(listed, held, lambda _e: True)] == ["other.txt"]


def test_a_link_not_followed_in_the_source_keeps_its_path(tmp_path: Path) -> None:
    source, destination = tmp_path / "s", tmp_path / "d"
    _write(source, "real/x.txt")
    os.symlink(source / "real", source / "linked")  # a link to a folder: not followed
    _write(destination, "real/x.txt", "linked/x.txt", "gone.txt")
    assert _found(source, destination) == ["gone.txt"]


def test_what_the_filters_exclude_is_not_deleted(tmp_path: Path) -> None:
    source, destination = tmp_path / "s", tmp_path / "d"
    _write(source, "a.txt")
    _write(destination, "a.txt", "keep.tmp", "drop.txt")
    found = _found(source, destination, lambda e: not e.relative.endswith(".tmp"))
    assert found == ["drop.txt"]


def test_a_source_folder_that_became_a_file_does_not_hide_extras(tmp_path: Path) -> None:
    source, destination = tmp_path / "s", tmp_path / "d"
    _write(source, "b")
    _write(destination, "b/inside.txt")
    assert _found(source, destination) == ["b/inside.txt"]


@pytest.mark.parametrize(
    "name", ["../outside.txt", "/etc/hostname", "a/../../outside.txt", "", "a//b", "./a"]
)
def test_a_name_that_leaves_the_folder_is_not_deleted(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    _write(root, "dest/a/b", "outside.txt")
    storage = open_storage("dst", root.as_uri())
    with pytest.raises(PathOutsideStorage):
        delete_file(storage, "dest", name)
    assert (root / "outside.txt").exists()
    assert (root / "dest/a/b").exists()


def test_a_link_on_the_way_leads_no_deletion_elsewhere(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    _write(root, "dest/keep.txt", "sibling/victim.txt")
    _write(elsewhere, "victim.txt")
    os.symlink(elsewhere, root / "dest" / "out")  # leads out of the storage
    os.symlink(root / "sibling", root / "dest" / "side")  # inside it, outside the folder
    storage = open_storage("dst", root.as_uri())
    for name in ("out/victim.txt", "side/victim.txt"):
        with pytest.raises(PathOutsideStorage):
            delete_file(storage, "dest", name)
    assert (elsewhere / "victim.txt").exists()
    assert (root / "sibling" / "victim.txt").exists()


def test_a_link_at_the_name_is_removed_not_what_it_points_to(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _write(root, "dest/target.txt")
    os.symlink(root / "dest" / "target.txt", root / "dest" / "link.txt")
    storage = open_storage("dst", root.as_uri())
    delete_file(storage, "dest", "link.txt")
    assert not os.path.lexists(root / "dest" / "link.txt")
    assert (root / "dest" / "target.txt").read_bytes() == b"dest/target.txt"


def test_a_file_is_deleted_and_a_folder_is_not(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _write(root, "dest/a/b.txt")
    storage = open_storage("dst", root.as_uri())
    delete_file(storage, "dest", "a/b.txt")
    assert not (root / "dest/a/b.txt").exists()
    with pytest.raises(IsADirectoryError):
        delete_file(storage, "dest", "a")
