"""``--delete-extra``: the destination files a source's listing does not have, found by walking
both trees side by side (memory stays flat), and their deletion, confined to the destination
folder whatever links or names it holds."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from ferry.domain.locations import is_within
from ferry.domain.sync import deletable
from ferry.engine.storages import StorageFS, close_folders
from ferry.engine.trees import TreeEntry, listing_key
from ferry.errors import PathOutsideStorage


def extras(
    source: Iterable[TreeEntry],
    destination: Iterable[TreeEntry],
    keeps: Callable[[TreeEntry], bool],
) -> Iterator[TreeEntry]:
    """The files of ``destination`` (a walk of the destination folder) that ``source`` (a walk
    of the source folder, unfiltered) has nothing at, and that ``keeps`` (the transfer's
    filters) lets through: ``domain.sync.deletable`` decides each. Both walks come in
    ``listing_key`` order. A folder of the source that could not be listed, and a link the
    walk did not follow, stand for everything below their path: nothing there is deleted.
    Only files are: not folders, nor the destination's unlistable folders or links."""
    walk = iter(source)
    current = next(walk, None)
    guarded: list[str] = []  # paths of unlisted source folders and unfollowed links passed
    for entry in destination:
        if entry.folder or entry.error is not None or entry.skipped is not None:
            continue
        key = listing_key(entry.cursor)
        while current is not None and listing_key(current.cursor) < key:
            if current.error is not None or current.skipped is not None:
                guarded.append(current.relative)
            current = next(walk, None)
        found = current is not None and (
            current.relative == entry.relative or _guards(current, entry.relative)
        )
        found = found or any(is_within(entry.relative, path) for path in guarded)
        if deletable(found, keeps(entry)) is not None:
            yield entry


def _guards(source: TreeEntry, relative: str) -> bool:
    return (source.error is not None or source.skipped is not None) and is_within(
        relative, source.relative
    )


def delete_file(storage: StorageFS, folder: str, relative: str) -> None:
    """Delete the file ``relative`` below ``folder`` (a path in ``storage``). Refuses a path
    that leaves the folder (``..``, an absolute name) or is not a file; on a local disk the
    folders on the way are walked down without following a link, so that no link, planted
    before or after the listing, leads the deletion elsewhere, and a link at the name itself
    is removed, not what it points to."""
    parts = relative.split("/")
    if not relative or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise PathOutsideStorage(storage.name, relative, f"{relative!r}: not deleted (a bad name)")
    inside = f"{folder.rstrip('/')}/{relative}" if folder.strip("/") else relative
    full = storage.resolve(inside)  # confined to the storage's root; links leading out refused
    if not storage.is_local:
        if storage.fs.isdir(full):
            raise IsADirectoryError(full)
        storage.fs.rm_file(full)
        return
    parent, _, name = storage.confined(inside).rpartition("/")
    opened: dict[tuple[str, str], int] = {}
    try:
        fd = storage.folder_at(parent, opened, create=False)
        if fd is None:
            raise PathOutsideStorage(
                storage.name, inside, f"{inside}: a link or a missing folder on its way"
            )
        os.unlink(name, dir_fd=fd)  # a folder: IsADirectoryError, as it should
    finally:
        close_folders(opened)
