"""List a directory tree page by page: memory stays flat however large the tree is."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any
from urllib.parse import unquote

from fsspec.implementations.local import LocalFileSystem

from ferry.engine.errors import sftp_as_os_error
from ferry.engine.storages import StorageFS

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """A file below the listed root ("/"-separated ``relative`` path) with its listed ``size``
    (``None`` when the storage does not say, as an HTTP index does not); a folder that could
    not be listed (``error`` set): that part of the tree is an object that failed, not a
    silent hole; an empty folder (``folder``), made at the destination; or an entry that is
    not copied, with the reason (``skipped``): nothing of a tree is left out without a word.
    A file's ``mtime`` (POSIX seconds) is the listing's, ``None`` where it says none; an
    ``error`` is ``denied`` when the folder was not found or permission was denied."""

    relative: str
    size: int | None
    error: str | None = None
    folder: bool = False
    skipped: str | None = None
    mtime: float | None = field(default=None, compare=False)  # entries compare by what they name
    denied: bool = False

    @property
    def cursor(self) -> str:
        """What a walk resumes ``after`` to go on past this entry: its relative path, with a
        "/" after it when it stands for a whole folder (an empty one, or one not listed)."""
        whole = self.folder or self.error is not None
        return f"{self.relative}/" if whole else self.relative


# Why a tree's link is not copied (it shows SKIPPED with this reason).
LINK_TO_FOLDER = "a link to a folder: not followed"
LINK_OUTSIDE = "a link that leads out of the storage or into a refused path: not followed"

# A position in a walk: one (rank, name) step per folder, then the entry's own step.
ListingKey = tuple[tuple[int, str], ...]
_FILE, _FOLDER, _WHOLE = 0, 1, 2  # in a folder: its files, then its folders, then its end
_END: ListingKey = ((_WHOLE, ""),)


def listing_key(cursor: str) -> ListingKey:
    """Where an entry's ``cursor`` stands in the order ``walk_tree`` yields entries: keys
    compare as the walk goes. In each folder its files come first, by name, then its folders,
    by name without a trailing "/", each folder with everything below it; names compare by
    code point. A cursor ending in "/" stands for a folder and everything below it."""
    if cursor.endswith("/"):
        return _folder_key(cursor[:-1]) + _END
    folder, _, name = cursor.rpartition("/")
    return (*_folder_key(folder), (_FILE, name))


def _folder_key(relative: str) -> ListingKey:
    return tuple((_FOLDER, name) for name in relative.split("/")) if relative else ()


def walk_tree(
    storage: StorageFS,
    path: str,
    page_size: int = PAGE_SIZE,
    exclude: Collection[str] = (),
    after: str | None = None,
) -> Iterator[list[TreeEntry]]:
    """Yield the entries below ``path`` in pages of at most ``page_size``, folder by folder,
    in the order of ``listing_key``.

    ``after``, an entry's ``cursor``, resumes a walk past that entry: only entries that come
    after it are yielded, and folders wholly before it are not listed again. What was added or
    removed meanwhile before the cursor is not seen; what was after it is, as in a full walk.

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
    walk = _Walk(storage, root, exclude, None if after is None else listing_key(after))
    page: list[TreeEntry] = []
    for entry in walk.entries():
        page.append(entry)
        if len(page) >= page_size:
            yield page
            page = []
    if page:
        yield page


class _Walk:
    """Depth first, one folder listed at a time; only folders still to visit are held.

    (fsspec's own ``walk`` forgets its ``on_error`` below the first level, so an unreadable
    subfolder would silently vanish from the copy.)"""

    def __init__(
        self, storage: StorageFS, root: str, exclude: Collection[str], after: ListingKey | None
    ) -> None:
        self.storage = storage
        self.root = root
        self.prefix = root.rstrip("/") + "/" if root else ""
        self.exclude = exclude
        self.after = after

    def entries(self) -> Iterator[TreeEntry]:
        pending: list[tuple[str, str]] = [(self.root, "")]
        while pending:
            folder, relative = pending.pop()
            position, after = _folder_key(relative), self.after
            if after is not None and position + _END <= after:
                continue  # the folder and everything below it came before the cursor
            try:
                listing = _list_folder(self.storage, folder)
            except OSError as exc:
                denied = isinstance(exc, FileNotFoundError | PermissionError)
                yield TreeEntry(relative, 0, _describe(exc), denied=denied)
                continue
            files, folders, empty = self._children(folder, listing)
            if after is not None and position < after:  # the cursor is in this folder
                files = [entry for entry in files if listing_key(entry.cursor) > after]
            yield from files
            if empty:
                yield TreeEntry(relative, 0, folder=True)
            pending.extend(reversed(folders))

    def _children(
        self, folder: str, listing: list[dict[str, Any]]
    ) -> tuple[list[TreeEntry], list[tuple[str, str]], bool]:
        """The folder's files (entries, by name), its folders to visit (full name as listed,
        relative path; by name), and whether it holds nothing at all."""
        files: list[TreeEntry] = []
        folders: list[tuple[str, str]] = []
        empty, itself = True, folder.rstrip("/")
        for info in listing:
            name = str(info["name"])  # folders keep a trailing "/" where the backend gives one
            full = name.rstrip("/")
            if full == itself:
                continue
            empty = False
            relative = _name(self.storage, full[len(self.prefix) :])
            if info.get("type") == "directory":
                if not _excluded(self.storage, full, self.exclude):
                    folders.append((name, relative))
            elif (
                info.get("islink")
                and self.storage.is_local
                and (why := _unfollowed(self.storage, full))
            ):
                files.append(TreeEntry(relative, 0, skipped=why))
            else:
                files.append(TreeEntry(relative, _size(info), mtime=listed_mtime(info)))
        files.sort(key=attrgetter("relative"))
        folders.sort(key=itemgetter(1))
        return files, folders, empty


def _size(info: dict[str, Any]) -> int | None:
    size = info.get("size")
    return None if size is None else int(size)


# Where backends put a file's modification time: fsspec's local and SFTP listings (``mtime``),
# S3 (``LastModified``), WebDAV (``modified``), others (``last_modified``, ``updated``).
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "modified", "updated")


def listed_mtime(info: dict[str, Any]) -> float | None:
    """A listed file's modification time as POSIX seconds, or ``None`` when its listing gives
    none (an HTTP index) or one that cannot be read."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        return None
    return None


def _list_folder(storage: StorageFS, folder: str) -> list[dict[str, Any]]:
    """The folder's entries as fsspec describes them (name, type, size, islink). On a local
    disk, read straight from the directory: fsspec's own listing builds some fifteen fields per
    file (three more system calls for a link), and a tree of small files is mostly listing."""
    if type(storage.fs) is not LocalFileSystem:
        try:
            return list(storage.fs.ls(folder, detail=True))
        except Exception as exc:  # an SFTP server's refusal, as the OSError it stands for
            if (plain := sftp_as_os_error(exc)) is not None:
                raise plain from exc
            raise
    with os.scandir(folder) as entries:
        return [_local_info(entry) for entry in entries]


def _local_info(entry: os.DirEntry[str]) -> dict[str, Any]:
    link = entry.is_symlink()
    if entry.is_dir(follow_symlinks=False):
        return {"name": entry.path, "type": "directory", "size": 0, "islink": False}
    kind = "file" if entry.is_file(follow_symlinks=False) else "other"
    try:
        stat = entry.stat(follow_symlinks=link)  # a link: the size of what it names
    except OSError:  # a dangling link
        return {"name": entry.path, "type": kind, "size": 0, "islink": link}
    return {
        "name": entry.path,
        "type": kind,
        "size": stat.st_size,
        "islink": link,
        "mtime": stat.st_mtime,
    }


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
