"""Places no transfer may read or write, even inside a storage: the server's own data
directory (its database and administrator token) usually sits inside the default ``local``
storage, which is rooted at the working directory."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

from ferry.domain.locations import Location
from ferry.engine.storages import StorageFS
from ferry.errors import InvalidRequest


class ProtectedLocation(InvalidRequest):
    def __init__(self, location: Location) -> None:
        super().__init__(f"{location} is inside the server's data directory: refused")


class ProtectedPaths:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.absolute = frozenset(os.path.realpath(p) for p in paths)

    def inside_of(self, storage: StorageFS) -> list[str]:
        """The protected paths under ``storage``'s root, relative to it (local storages only)."""
        if not storage.is_local:
            return []
        root = os.path.realpath(storage.root)
        return [
            os.path.relpath(p, root)
            for p in self.absolute
            if p == root or p.startswith(root.rstrip("/") + "/")
        ]

    def check(self, storage: StorageFS, location: Location) -> None:
        """Refuse ``location`` if it is, or is inside, a protected path (symlinks resolved)."""
        if not storage.is_local:
            return
        real = os.path.realpath(posixpath.join(storage.root, location.path))
        if any(real == p or real.startswith(p.rstrip("/") + "/") for p in self.absolute):
            raise ProtectedLocation(location)


def within(path: str, protected: list[str]) -> bool:
    """Whether a storage-relative ``path`` is one of (or below one of) ``protected``."""
    return any(p == "." or path == p or path.startswith(p + "/") for p in protected)
