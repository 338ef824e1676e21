"""Listing a local tree in pages: relative paths, sizes, and nothing from outside the storage."""

from __future__ import annotations

import os
import shutil

import pytest
from fsspec.implementations.local import LocalFileSystem

from ferry.engine.storages import StorageFS
from ferry.engine.trees import LINK_OUTSIDE, LINK_TO_FOLDER, TreeEntry, walk_tree
from ferry.errors import PathOutsideStorage


def write(root, relative, data=b"x"):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def listed(storage, path="", page_size=1000) -> list[TreeEntry]:
    return [entry for page in walk_tree(storage, path, page_size) for entry in page]


def test_files_are_listed_relative_to_the_root_with_sizes(src, src_root):
    write(src_root, "data/a.txt", b"abc")
    write(src_root, "data/sub/deeper/b.bin", b"")
    write(src_root, "other.txt")
    assert sorted(listed(src, "data"), key=lambda e: e.relative) == [
        TreeEntry("a.txt", 3),
        TreeEntry("sub/deeper/b.bin", 0),
    ]


def test_the_storage_root_can_be_listed(src, src_root):
    write(src_root, "a")
    write(src_root, "d/b", b"12")
    assert sorted(listed(src), key=lambda e: e.relative) == [
        TreeEntry("a", 1),
        TreeEntry("d/b", 2),
    ]


def test_names_with_spaces_and_non_ascii_are_kept(src, src_root):
    names = {"my folder/a file.txt", "données/été.csv", "日本/ファイル"}
    for name in names:
        write(src_root, f"t/{name}")
    assert {e.relative for e in listed(src, "t")} == names


def test_pages_never_exceed_the_page_size(src, src_root):
    for i in range(7):
        write(src_root, f"t/d{i % 2}/f{i}")
    pages = list(walk_tree(src, "t", page_size=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len({e.relative for p in pages for e in p}) == 7


def test_empty_folders_are_entries_of_their_own(src, src_root):
    """Defect 18.14: empty folders vanished from a tree's copy, without a word."""
    (src_root / "t" / "empty" / "sub").mkdir(parents=True)
    (src_root / "t" / "full").mkdir()
    write(src_root, "t/full/f", b"1")
    entries = [e for page in walk_tree(src, "t") for e in page]
    assert [(e.relative, e.folder) for e in entries] == [("empty/sub", True), ("full/f", False)]


def test_an_empty_root_is_an_entry_itself(src, src_root):
    (src_root / "empty").mkdir()
    assert [(e.relative, e.folder) for e in listed(src, "empty")] == [("", True)]


def test_a_missing_root_is_file_not_found(src):
    with pytest.raises(FileNotFoundError):
        list(walk_tree(src, "nope"))


def test_a_file_root_is_not_a_directory(src, src_root):
    write(src_root, "file")
    with pytest.raises(NotADirectoryError):
        list(walk_tree(src, "file"))


def test_a_root_that_climbs_out_is_refused(src):
    with pytest.raises(PathOutsideStorage):
        list(walk_tree(src, "../"))


def test_a_root_linked_out_of_the_storage_is_refused(src, src_root, tmp_path):
    write(tmp_path, "outside/secret")
    (src_root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(PathOutsideStorage):
        list(walk_tree(src, "link"))


def test_symlinks_leading_out_are_left_out(src, src_root, tmp_path):
    write(tmp_path, "outside/secret", b"private")
    write(src_root, "t/kept", b"1")
    (src_root / "t" / "file-link").symlink_to(tmp_path / "outside" / "secret")
    (src_root / "t" / "dir-link").symlink_to(tmp_path / "outside")
    entries = [(e.relative, e.skipped) for e in listed(src, "t")]
    # Defect 18.14: they vanished without a word; they are SKIPPED, each with its reason.
    assert entries == [("dir-link", LINK_TO_FOLDER), ("file-link", LINK_OUTSIDE), ("kept", None)]


def test_symlinks_inside_the_storage_are_listed(src, src_root):
    write(src_root, "t/real", b"12")
    (src_root / "t" / "alias").symlink_to(src_root / "t" / "real")
    assert sorted(e.relative for e in listed(src, "t")) == ["alias", "real"]


def test_symlinked_folders_are_not_followed(src, src_root):
    (src_root / "real").mkdir()
    (src_root / "real" / "f").write_text("f")
    (src_root / "alias").symlink_to(src_root / "real")
    listed = [(e.relative, e.skipped) for page in walk_tree(src, "") for e in page]
    assert listed == [("alias", LINK_TO_FOLDER), ("real/f", None)]


def test_excluded_folders_are_left_out(src, src_root):
    (src_root / ".ferry").mkdir()
    (src_root / ".ferry" / "admin.token").write_text("secret")
    (src_root / "f").write_text("f")
    pages = walk_tree(src, "", exclude={os.path.realpath(src_root / ".ferry")})
    assert [e.relative for page in pages for e in page] == ["f"]


def test_a_folder_that_cannot_be_listed_is_an_error_entry(src_root):
    class Unreadable(LocalFileSystem):
        def ls(self, path, detail=False, **kwargs):
            if path.rstrip("/").endswith("locked"):
                raise PermissionError(13, "Permission denied", path)
            return super().ls(path, detail=detail, **kwargs)

    (src_root / "locked").mkdir()
    (src_root / "open.txt").write_text("x")
    storage = StorageFS("src", Unreadable(skip_instance_cache=True), str(src_root))
    entries = [e for page in walk_tree(storage, "") for e in page]
    assert [(e.relative, e.error) for e in entries] == [
        ("open.txt", None),
        ("locked", "cannot list folder: Permission denied"),
    ]


def test_a_folder_deleted_while_the_tree_is_listed_is_a_failed_entry(src_root):
    class Vanishing(LocalFileSystem):
        """Deletes ``gone/`` right after listing the root: someone else cleaned up meanwhile."""

        def ls(self, path, detail=False, **kwargs):
            listing = super().ls(path, detail=detail, **kwargs)
            if path.rstrip("/") == str(src_root):
                shutil.rmtree(src_root / "gone", ignore_errors=True)
            return listing

    (src_root / "gone").mkdir()
    (src_root / "gone" / "f").write_text("f")
    (src_root / "kept.txt").write_text("k")
    storage = StorageFS("src", Vanishing(skip_instance_cache=True), str(src_root))
    entries = [(e.relative, e.error) for page in walk_tree(storage, "") for e in page]
    assert entries == [
        ("kept.txt", None),
        ("gone", "cannot list folder: No such file or directory"),
    ]


def test_a_local_folder_is_described_as_fsspec_describes_it(src, src_root, tmp_path):
    """The local listing reads the directory itself; what it says of each entry (type, size,
    whether it is a link) must be what fsspec's listing says, links of every kind included."""
    from ferry.engine.trees import _list_folder

    write(src_root, "f.bin", b"12345")
    write(src_root, "sub/inner.txt")
    (tmp_path / "outside.bin").write_bytes(b"0123456789")
    (src_root / "to-file").symlink_to(src_root / "f.bin")
    (src_root / "to-folder").symlink_to(src_root / "sub")
    (src_root / "to-outside").symlink_to(tmp_path / "outside.bin")
    (src_root / "dangling").symlink_to(src_root / "nothing")
    keys = ("name", "type", "size", "islink")

    def described(listing):
        return sorted(
            tuple(e[k] if (k != "size" or e["type"] != "directory") else 0 for k in keys)
            for e in listing
        )

    ours = described(_list_folder(src, str(src_root)))
    theirs = described(LocalFileSystem().ls(str(src_root), detail=True))
    assert ours == theirs
    assert len(ours) == 6


def test_an_sftp_refusal_is_one_denied_entry_not_a_failed_listing(src_root):
    """asyncssh's errors come through the SFTP backend's listing unwrapped: a subfolder
    denied failed the whole listing."""
    import asyncssh

    class Refusing(LocalFileSystem):
        def ls(self, path, detail=False, **kwargs):
            if path.rstrip("/").endswith("locked"):
                raise asyncssh.SFTPPermissionDenied("Permission denied")
            return super().ls(path, detail=detail, **kwargs)

    (src_root / "locked").mkdir()
    (src_root / "open.txt").write_text("x")
    storage = StorageFS("src", Refusing(skip_instance_cache=True), str(src_root))
    entries = [e for page in walk_tree(storage, "") for e in page]
    assert [(e.relative, e.error, e.denied) for e in entries] == [
        ("open.txt", None, False),
        ("locked", "cannot list folder: Permission denied", True),
    ]
