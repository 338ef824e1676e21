"""Places no transfer may read or write: the server's own data directory (its database and
administrator token usually sit inside the default ``local`` storage, which is rooted at the
working directory), and endpoints outside the registry that no administrator allowed."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from ferry.domain.locations import Location, is_endpoint, is_within
from ferry.domain.transfers import Storage, endpoint_storage
from ferry.engine.storages import StorageFS, is_local_url, open_storage
from ferry.errors import InvalidRequest, ProtectedPath
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import RegistryStore, Store


class ProtectedPaths:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.absolute = frozenset(os.path.realpath(p) for p in paths)

    def inside_of(self, storage: StorageFS) -> list[str]:
        """The protected paths under ``storage``'s root, relative to it (local storages only)."""
        if not storage.is_local:
            return []
        real = os.path.realpath(storage.root)
        return sorted(os.path.relpath(p, real) for p in self.absolute if is_within(p, real))

    def inside_of_url(self, name: str, url: str) -> list[str]:
        """``inside_of`` for a storage not opened yet, told by its URL: none for a remote one
        (opening it to find its root could connect)."""
        if not is_local_url(url):
            return []
        return self.inside_of(open_storage(name, url))

    def guarding(self, storage: StorageFS) -> StorageFS:
        """``storage``, refusing (in ``resolve``) every path inside a protected one."""
        inside = tuple(self.inside_of(storage))
        return replace(storage, protected=inside) if inside else storage

    def check(self, storage: StorageFS, location: Location) -> None:
        """Refuse ``location`` if it is, or is inside, a protected path (symlinks resolved)."""
        if not storage.is_local:
            return
        real = os.path.realpath(posixpath.join(storage.root, location.path))
        if any(is_within(real, p) for p in self.absolute):
            raise ProtectedPath(location.storage, location.path)


class EndpointPolicy:
    """Which endpoints outside the registry (URLs instead of ``STORAGE:PATH``) transfers may
    name: none, unless an administrator lists the hosts (``fnmatch`` patterns, e.g.
    ``*.example.org``); local files, never. Such endpoints carry no credentials and belong to
    the site ``UNKNOWN``, so only catch-all channels govern them."""

    NEVER = frozenset({"file", "local", "memory", "mock"})

    def __init__(self, hosts: Iterable[str] = ()) -> None:
        self.hosts = tuple(h.lower() for h in hosts)

    def storage_for(self, name: str) -> Storage:
        """The storage standing for endpoint ``name`` (``scheme://host``), if allowed."""
        parts = urlsplit(name)
        if parts.scheme in self.NEVER:
            raise InvalidRequest(f"{name}: {parts.scheme} URLs are refused: register a storage")
        host = (parts.hostname or "").lower()
        if not any(fnmatch.fnmatchcase(host, pattern) for pattern in self.hosts):
            raise InvalidRequest(
                f"{name} is not a registered storage and unregistered endpoints on {host!r}"
                " are not allowed (an administrator may allow them: --allow-unregistered)"
            )
        return endpoint_storage(name)


async def lookup_storage(store: RegistryStore, name: str, endpoints: EndpointPolicy) -> Storage:
    """A registered storage by name, or the storage of an allowed endpoint URL."""
    if is_endpoint(name):
        return endpoints.storage_for(name)
    return await store.get_storage(name)


async def open_named_storage(
    store: RegistryStore, name: str, endpoints: EndpointPolicy, protected: ProtectedPaths
) -> StorageFS:
    """``lookup_storage``, opened for I/O with its credentials (in a thread: opening a remote
    backend may connect), refusing the protected paths inside it."""
    storage = await lookup_storage(store, name, endpoints)
    opened = await asyncio.to_thread(
        open_storage, storage.name, storage.url, storage.backend_options()
    )
    return protected.guarding(opened)


class StorageLoop(Loop):
    """A loop that opens storages by name, as the agents would (their credentials, the
    endpoint policy), refusing the protected paths inside them: expansion lists sources,
    finalize removes what lost attempts left."""

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        protected: ProtectedPaths | None = None,
        endpoints: EndpointPolicy | None = None,
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.protected = protected or ProtectedPaths([])
        self.endpoints = endpoints or EndpointPolicy()

    async def _open(self, name: str) -> StorageFS:
        return await open_named_storage(self.store, name, self.endpoints, self.protected)
