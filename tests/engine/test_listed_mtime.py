"""A listed file's modification time, as each backend's listing spells it, for age filters."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from fsspec.implementations.local import LocalFileSystem

from ferry.engine.storages import StorageFS
from ferry.engine.trees import listed_mtime, walk_tree

WHEN = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "info",
    [
        {"mtime": WHEN.timestamp()},  # fsspec's local listing
        {"mtime": WHEN},  # SFTP
        {"LastModified": WHEN},  # S3
        {"modified": WHEN.replace(tzinfo=None)},  # WebDAV, naive: UTC
        {"last_modified": "2026-12-01T08:30:00Z"},
        {"updated": "2026-12-01T09:30:00+01:00"},
    ],
)
def test_each_backends_mtime_is_read_as_posix_seconds(info) -> None:
    assert listed_mtime(info) == WHEN.timestamp()


@pytest.mark.parametrize("info", [{}, {"size": 3}, {"mtime": "not a time"}, {"mtime": [1]}])
def test_a_listing_without_a_readable_mtime_gives_none(info) -> None:
    assert listed_mtime(info) is None


def test_a_local_walk_gives_each_files_mtime(src, src_root) -> None:
    (src_root / "a").write_bytes(b"a")
    os.utime(src_root / "a", (0, WHEN.timestamp()))
    (entry,) = [e for page in walk_tree(src, "") for e in page]
    assert entry.mtime == WHEN.timestamp()


def test_a_walk_through_fsspec_gives_its_mtime_too(src_root) -> None:
    (src_root / "b").write_bytes(b"b")
    os.utime(src_root / "b", (0, WHEN.timestamp()))

    class Listed(LocalFileSystem):  # not the scandir shortcut: fsspec's own listing
        pass

    storage = StorageFS("src", Listed(skip_instance_cache=True), str(src_root))
    (entry,) = [e for page in walk_tree(storage, "") for e in page]
    assert entry.mtime == WHEN.timestamp()
