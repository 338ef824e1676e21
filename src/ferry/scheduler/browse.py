"""What a storage holds, one folder at a time, for a person about to name it in a transfer
(``ferry ls STORAGE:PATH``, ``GET /storages/{name}/entries``).

The storage is opened as the agents open it (its credentials, the endpoint policy), and read
with the same rights a transfer of the caller's would have: its scope must be granted to read
the storage, the path stays inside it, and the server's own paths inside it (its data
directory) are neither listed nor listed into. A folder's entries come sorted by name, in pages
that go on ``after`` the last name of the one before."""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass
from typing import Any

from ferry.domain.locations import Location
from ferry.engine.copy import modified
from ferry.engine.errors import classify
from ferry.engine.storages import StorageFS, within
from ferry.errors import AccessDenied, NotFound, SourceNotFound
from ferry.scheduler.guard import EndpointPolicy, ProtectedPaths, open_named_storage
from ferry.scheduler.submission import check_grants, check_scope
from ferry.store.abc import Principal, Store


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # below the folder listed; the file's own name when a file was named
    folder: bool
    size: int | None  # None: the storage does not say (a folder, an HTTP index)
    mtime: float | None  # POSIX seconds; None: the storage does not say

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": self.folder, "size": self.size, "mtime": self.mtime}


@dataclass(frozen=True, slots=True)
class Listing:
    location: Location
    entries: list[Entry]
    next_after: str | None  # the ``after`` of the next page; None: this was the last


async def list_folder(
    store: Store,
    principal: Principal,
    location: Location,
    *,
    scope: str,
    protected: ProtectedPaths,
    endpoints: EndpointPolicy,
    after: str | None = None,
    limit: int = 1000,
) -> Listing:
    """One page of the folder at ``location`` (a file: itself alone). Raises ``OutOfScope``
    when the scope may not read the storage, ``NotFound`` when there is nothing there,
    ``AccessDenied`` when the storage refuses, another ``TransferError`` when it fails."""
    check_scope(principal, scope)
    await check_grants(store, principal, scope, reads=[location])
    storage = await open_named_storage(store, location.storage, endpoints, protected)
    try:
        entries, more = await asyncio.to_thread(_page, storage, location.path, after, limit)
    except Exception as exc:
        error = classify(exc, str(location))
        if isinstance(error, SourceNotFound):
            raise NotFound(error.message) from exc
        if isinstance(error, AccessDenied):
            raise AccessDenied(error.message) from exc
        raise error from exc
    return Listing(location, entries, entries[-1].name if more else None)


def _page(storage: StorageFS, path: str, after: str | None, limit: int) -> tuple[list[Entry], bool]:
    full = storage.resolve(path)
    if not storage.fs.isdir(full):
        info = storage.fs.info(full)  # FileNotFoundError when nothing is there
        return [_entry(posixpath.basename(full.rstrip("/")), info)], False
    named = []
    for info in storage.fs.ls(full, detail=True):
        name = posixpath.basename(str(info["name"]).rstrip("/"))
        relative = posixpath.join(path, name) if path else name
        if name and (after is None or name > after) and not within(relative, storage.protected):
            named.append((name, info))
    named.sort(key=lambda pair: pair[0])
    return [_entry(name, info) for name, info in named[:limit]], len(named) > limit


def _entry(name: str, info: dict[str, Any]) -> Entry:
    folder = info.get("type") == "directory"
    size = info.get("size")
    return Entry(
        name,
        folder,
        None if folder or size is None else int(size),
        modified(info),
    )
