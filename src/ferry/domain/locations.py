"""Locations inside storages: ``STORAGE:PATH``, confined to the storage root.

A path inside a storage is relative to its root. Absolute paths and ``..`` that climb out are
refused here, before anything touches a storage; symlinks that lead out are refused by the
engine, which is the only layer that can see them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ferry.errors import InvalidLocation, PathOutsideStorage

_STORAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Location:
    """A normalized path inside a named storage; ``path`` is "" for the root."""

    storage: str
    path: str

    def __str__(self) -> str:
        return f"{self.storage}:{self.path}"

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def child(self, relative: str) -> Location:
        return Location(
            self.storage, confine_path(self.storage, posixpath.join(self.path, relative))
        )


def parse_location(text: str) -> Location:
    """Parse ``STORAGE:PATH`` (``local:data/a.csv``); the path may be empty for the root."""
    storage, sep, path = text.partition(":")
    if not sep:
        raise InvalidLocation(text, "expected STORAGE:PATH, e.g. local:data/a.csv")
    if not _STORAGE_NAME.match(storage):
        raise InvalidLocation(text, f"{storage!r} is not a storage name")
    return Location(storage, confine_path(storage, path))


def confine_path(storage: str, path: str) -> str:
    """Normalize ``path`` relative to the storage root, refusing anything that leaves it."""
    if "\x00" in path:
        raise InvalidLocation(f"{storage}:{path}", "NUL character in path")
    if path.startswith("/") or path.startswith("\\"):
        raise PathOutsideStorage(storage, path)
    normalized = posixpath.normpath(path) if path else ""
    if normalized in (".", ""):
        return ""
    if normalized == ".." or normalized.startswith("../"):
        raise PathOutsideStorage(storage, path)
    return normalized


def is_storage_name(name: str) -> bool:
    return bool(_STORAGE_NAME.match(name))
