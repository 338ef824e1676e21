"""List a directory tree page by page: memory stays flat however large the tree is."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from fsspec.implementations.local import LocalFileSystem

from ferry.engine.storages import StorageFS

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """A file below the listed root ("/"-separated ``relative`` path); a folder that could
    not be listed (``error`` set): that part of the tree is an object that failed, not a
    silent hole; an empty folder (``folder``), made at the destination; or an entry that is
    not copied, with the reason (``skipped``): nothing of a tree is left out without a word."""

    relative: str
    size: int
    error: str | None = None
    folder: bool = False
    skipped: str | None = None


# Why a tree's link is not copied (it shows SKIPPED with this reason).
LINK_TO_FOLDER = "a link to a folder: not followed"
LINK_OUTSIDE = "a link that leads out of the storage or into a refused path: not followed"


def walk_tree(
    storage: StorageFS,
    path: str,
    page_size: int = PAGE_SIZE,
    exclude: Collection[str] = (),
) -> Iterator[list[TreeEntry]]:
    """Yield the files below ``path`` in pages of at most ``page_size``, folder by folder.

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``NotADirectoryError`` if it is
    a file. Like ``rclone copy`` without ``-L``, symlinked folders are not followed; on local
    storages, neither are links leading out of the storage (both are entries ``skipped``),
    and the folders in ``exclude`` (absolute paths, e.g. the server's own data directory) are
    left out. Empty folders are entries too (``folder``), the root included, as
    ``rclone --create-empty-src-dirs`` makes them."""
    full = storage.resolve(path)
    root = full.rstrip("/") or full  # "/" stays "/", a backend's root named "" stays ""
    if not storage.fs.isdir(root):
        storage.fs.info(root)  # FileNotFoundError when it is not there at all
        raise NotADirectoryError(root)
    prefix = root.rstrip("/") + "/" if root else ""
    page: list[TreeEntry] = []
    for entry in _entries(storage, root, prefix, exclude):
        page.append(entry)
        if len(page) >= page_size:
            yield page
            page = []
    if page:
        yield page


def _entries(
    storage: StorageFS, root: str, prefix: str, exclude: Collection[str]
) -> Iterator[TreeEntry]:
    """Depth first, one folder listed at a time; only folders still to visit are held.

    (fsspec's own ``walk`` forgets its ``on_error`` below the first level, so an unreadable
    subfolder would silently vanish from the copy.)"""
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            listing = _list_folder(storage, folder)
        except OSError as exc:
            relative = folder.rstrip("/")[len(prefix) :] if folder != root else ""
            yield TreeEntry(relative, 0, _describe(exc))
            continue
        folders, empty = [], True
        for info in sorted(listing, key=lambda i: str(i["name"])):
            name = str(info["name"])  # folders keep a trailing "/" where the backend gives one
            full = name.rstrip("/")
            if full == folder.rstrip("/"):
                continue
            empty = False
            relative = _name(storage, full[len(prefix) :])
            if info.get("type") == "directory":
                if not _excluded(storage, full, exclude):
                    folders.append(name)
            elif info.get("islink") and storage.is_local and (why := _unfollowed(storage, full)):
                yield TreeEntry(relative, 0, skipped=why)
            else:
                yield TreeEntry(relative, int(info.get("size") or 0))
        if empty:
            yield TreeEntry(_name(storage, folder.rstrip("/")[len(prefix) :]), 0, folder=True)
        pending.extend(reversed(folders))


def _list_folder(storage: StorageFS, folder: str) -> list[dict[str, Any]]:
    """The folder's entries as fsspec describes them (name, type, size, islink). On a local
    disk, read straight from the directory: fsspec's own listing builds some fifteen fields per
    file (three more system calls for a link), and a tree of small files is mostly listing."""
    if type(storage.fs) is not LocalFileSystem:
        return list(storage.fs.ls(folder, detail=True))
    with os.scandir(folder) as entries:
        return [_local_info(entry) for entry in entries]


def _local_info(entry: os.DirEntry[str]) -> dict[str, Any]:
    link = entry.is_symlink()
    if entry.is_dir(follow_symlinks=False):
        return {"name": entry.path, "type": "directory", "size": 0, "islink": False}
    kind = "file" if entry.is_file(follow_symlinks=False) else "other"
    try:
        size = entry.stat(follow_symlinks=link).st_size  # a link: the size of what it names
    except OSError:
        size = 0  # a dangling link
    return {"name": entry.path, "type": kind, "size": size, "islink": link}


def _name(storage: StorageFS, relative: str) -> str:
    """A path as the storage's own names have it: an HTTP index lists percent-encoded links."""
    return unquote(relative) if storage.is_web else relative


def _excluded(storage: StorageFS, full: str, exclude: Collection[str]) -> bool:
    return storage.is_local and bool(exclude) and os.path.realpath(full) in exclude


def _describe(failure: OSError) -> str:
    return f"cannot list folder: {failure.strerror or failure}"


def _unfollowed(storage: StorageFS, full: str) -> str | None:
    """Why a link is not copied: a symlink is copied as the file it points to if that file is
    inside the storage; a symlinked folder is not followed."""
    if os.path.isdir(full):
        return LINK_TO_FOLDER
    return None if _inside(storage, full) else LINK_OUTSIDE


def _inside(storage: StorageFS, full: str) -> bool:
    try:
        storage.resolve(storage.relative(full))
    except Exception:
        return False
    return True
