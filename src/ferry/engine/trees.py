"""List a directory tree page by page: memory stays flat however large the tree is."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ferry.engine.storages import StorageFS

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class TreeEntry:
    relative: str  # path below the listed root, "/"-separated
    size: int


def walk_tree(
    storage: StorageFS, path: str, page_size: int = PAGE_SIZE
) -> Iterator[list[TreeEntry]]:
    """Yield the files below ``path`` in pages of at most ``page_size``, directory by directory.

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``NotADirectoryError`` if it is
    a file. Symlinks that lead out of the storage are left out."""
    root = storage.resolve(path)
    info = storage.fs.info(root)
    if info.get("type") != "directory":
        raise NotADirectoryError(root)
    prefix = root.rstrip("/") + "/"
    page: list[TreeEntry] = []
    for folder, _dirs, files in storage.fs.walk(root, detail=True):
        for name, entry in sorted(files.items()):
            full = f"{folder.rstrip('/')}/{name}"
            if storage.is_local and not _inside(storage, full):
                continue
            page.append(TreeEntry(full[len(prefix) :], int(entry.get("size") or 0)))
            if len(page) >= page_size:
                yield page
                page = []
    if page:
        yield page


def _inside(storage: StorageFS, full: str) -> bool:
    try:
        storage.resolve(storage.relative(full))
    except Exception:
        return False
    return True
