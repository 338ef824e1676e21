"""Storages as fsspec filesystems, with every path confined to the storage root."""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import fsspec
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from ferry.domain.locations import confine_path
from ferry.errors import InvalidRequest, PathOutsideStorage, ProtectedPath


@dataclass(frozen=True)
class StorageFS:
    """One storage opened for I/O: the filesystem and its root path inside it."""

    name: str
    fs: AbstractFileSystem
    root: str
    # Paths relative to the root that no object may be, or be inside of (the server's data
    # directory, when a local storage's root holds it), by name and by where links lead.
    protected: tuple[str, ...] = ()

    @cached_property
    def is_local(self) -> bool:
        return "file" in self.protocols

    @cached_property
    def protocols(self) -> tuple[str, ...]:
        return _protocols(self.fs)

    def move_into_place(self, temporary: str, final: str) -> None:
        """Rename a verified temporary file to its final name, replacing what is there.
        WebDAV's client moves without overwriting unless asked: ask for the one MOVE that
        replaces."""
        client = getattr(self.fs, "client", None)
        if "webdav" in self.protocols and client is not None:
            client.move(temporary, final, overwrite=True)
            return
        self.fs.mv(temporary, final)

    @cached_property
    def reads_may_stall(self) -> bool:
        """Whether a read can wait on something outside this process (a network, a server):
        a local disk's cannot, nor can an in-process store's (``memory://``, ``mock://``)."""
        return not (self.is_local or _IN_PROCESS.intersection(self.protocols))

    @cached_property
    def is_web(self) -> bool:
        return bool({"http", "https"} & set(self.protocols))

    def resolve(self, path: str) -> str:
        """The backend path of ``path`` (relative to the root); refuses escapes, symlinks
        included, on local storages."""
        relative = confine_path(self.name, path)
        if self.is_web or "webdav" in self.protocols:
            # These backends put the path in a URL, where %2e%2e and %2f are ".." and "/",
            # and where "?" or "#" would end the path (".." + "#" climbs above the root).
            confine_path(self.name, unquote(path))
            if "?" in path or "#" in path:
                why = f"{self.name}:{path}: a path on this storage cannot hold '?' or '#'"
                raise PathOutsideStorage(self.name, path, why)
        full = posixpath.join(self.root, relative) if relative else self.root
        if self.is_local:
            linked = self._walk_below_root(full, None)[0]
            self._refuse_symlink_escape(full, path, linked)
            self._refuse_protected(full, path, relative, linked)
        return full

    def resolve_local(self, path: str) -> tuple[str, os.stat_result | None]:
        """``resolve`` on a local storage, with what ``lstat`` said of the path itself (``None``
        when nothing is there): the check has just read it, and a copy needs it next. Inside
        ``remembered_folders`` the folders on the way are looked at once per batch; ``resolve``
        (a check made again on purpose) always looks at each."""
        relative = confine_path(self.name, path)
        full = self._below_root + relative if relative else self.root  # posixpath.join's result
        remembered = _folders.seen
        seen = None if remembered is None else remembered.setdefault(self.root, set())
        linked, status = self._walk_below_root(full, seen)
        self._refuse_symlink_escape(full, path, linked)
        self._refuse_protected(full, path, relative, linked)
        if linked and status is None:  # the walk stopped at a link on the way (inside)
            status = _lstat_if_there(full)
        return full, status

    def relative(self, full: str) -> str:
        """The inverse of ``resolve``: a backend path back to a path inside the storage."""
        stripped = full.rstrip("/")
        if stripped == self.root.rstrip("/"):
            return ""
        prefix = self.root.rstrip("/") + "/"
        if not stripped.startswith(prefix):
            raise PathOutsideStorage(self.name, full)
        return stripped[len(prefix) :]

    def _walk_below_root(
        self, full: str, seen: set[str] | None
    ) -> tuple[bool, os.stat_result | None]:
        """Whether a component of ``full`` below the root is a symbolic link (or cannot be
        told), and the ``lstat`` of ``full`` itself when it exists: two or three ``lstat``
        calls where a full ``realpath`` walks every component from ``/``. A folder in ``seen``
        (found to be one a moment ago) is not looked at again; folders found are added."""
        root = self.root.rstrip("/")
        if not full.startswith(root + "/"):
            return full != root, None
        if seen is not None and full.rpartition("/")[0] in seen:
            # Its folder was found to be one in this batch, and so was every folder above it
            # (they are looked at from the top, and added once looked at): the path alone.
            return _linked_or_there(full, seen)
        current, status = root, None
        for part in full[len(root) + 1 :].split("/"):
            current = f"{current}/{part}"
            if seen is not None and current in seen and current != full:
                continue
            try:
                status = os.lstat(current)
            except FileNotFoundError:
                return False, None  # nothing further down exists yet
            except OSError:
                return True, None
            if stat.S_ISLNK(status.st_mode):
                return True, status if current == full else None
            if seen is not None and stat.S_ISDIR(status.st_mode):
                seen.add(current)
        return False, status

    @cached_property
    def _below_root(self) -> str:
        """The root with one ``/`` after it: a path inside is this and its relative path."""
        return self.root if self.root.endswith("/") else self.root + "/"

    @cached_property
    def _real_root(self) -> str:
        # Once per opened storage: an agent resolves paths several times per object.
        return os.path.realpath(self.root)

    def _refuse_protected(self, full: str, path: str, relative: str, linked: bool) -> None:
        """Refuse a path that is, or is inside, a protected one: by its name, and, when a link
        is on its way, by where it leads (a link inside the root may point into them)."""
        if not self.protected:
            return
        if linked:
            real = os.path.realpath(full)  # inside the real root: the escape check passed
            below = self._real_root.rstrip("/") + "/"
            relative = real[len(below) :] if real.startswith(below) else ""
        if _within(relative, self.protected):
            raise ProtectedPath(self.name, path)

    def _refuse_symlink_escape(self, full: str, path: str, linked: bool) -> None:
        if not linked:
            return  # normalized, no "..", no link below the root: it cannot lead out
        real_root = self._real_root
        real = os.path.realpath(full)
        if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
            raise PathOutsideStorage(self.name, path)


_IN_PROCESS = frozenset({"memory", "mock"})


class _SeenFolders(threading.local):
    # The folders found, per storage root: one storage's walk vouches for the folders below
    # its own root only. (Another storage's root may lie below this one's and be a link: the
    # folders seen inside it say nothing of the way down to it.)
    seen: dict[str, set[str]] | None = None


_folders = _SeenFolders()


@contextlib.contextmanager
def remembered_folders() -> Iterator[None]:
    """While inside, this thread's checks of local paths (``resolve_local``) remember the
    folders they found to be folders, not links, and do not look at them again: a batch of
    small objects copied one after the other lies in a few folders, and four of a 4 KiB
    copy's fourteen system calls were ``lstat`` calls on the same folders. A check and the
    open after it are never one step, so a folder replaced by a link in between goes unseen
    anyway; remembering widens that window from one object's copy to one batch's (a
    millisecond or so: only a batch of small local copies remembers), and no further."""
    outer, _folders.seen = _folders.seen, {}
    try:
        yield
    finally:
        _folders.seen = outer


def _linked_or_there(path: str, seen: set[str]) -> tuple[bool, os.stat_result | None]:
    """The last step of ``_walk_below_root``, for a path whose folders are known."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return False, None
    except OSError:
        return True, None
    if stat.S_ISLNK(status.st_mode):
        return True, status
    if stat.S_ISDIR(status.st_mode):
        seen.add(path)
    return False, status


def _lstat_if_there(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def open_storage(
    name: str,
    url: str,
    options: dict[str, Any] | None = None,
    protected: tuple[str, ...] = (),
) -> StorageFS:
    """Open the storage whose root is ``url`` through fsspec's registry; ``protected``: the
    paths inside it (relative to its root) no object may be in.

    A fresh filesystem instance each time (``skip_instance_cache``): no hidden state shared
    between storages that happen to have the same URL and different credentials."""
    url, options = _webdav_server(url, dict(options or {}))
    fs, root = url_to_fs(url, skip_instance_cache=True, **options)
    return StorageFS(name=name, fs=fs, root=root.rstrip("/") or "/", protected=protected)


def _within(relative: str, protected: tuple[str, ...]) -> bool:
    """Whether ``relative`` (a normalized path below a root, "" for the root) is one of
    ``protected`` or inside one ("." stands for the root itself)."""
    return any(p == "." or relative == p or relative.startswith(p + "/") for p in protected)


def _webdav_server(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``webdav://host:port/path`` (or ``webdavs://`` for TLS) as webdav4 wants it: the server
    in ``base_url`` and the path in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("webdav", "webdavs") or not parts.netloc:
        return url, options
    scheme = "https" if parts.scheme == "webdavs" else "http"
    options.setdefault("base_url", f"{scheme}://{parts.netloc}")
    return f"webdav://{parts.path.lstrip('/')}", options


def check_url(url: str) -> str:
    """The protocol of a storage URL, if fsspec has a backend for it and the URL carries no
    password (those go in credentials, encrypted, never in a URL that is shown and logged)."""
    parts = urlsplit(url)
    protocol = {"webdavs": "webdav"}.get(parts.scheme, parts.scheme) or "file"
    if parts.password:
        raise InvalidRequest("put the password in a credential, not in the URL")
    for name, _value in parse_qsl(parts.query, keep_blank_values=True):
        if looks_secret(name):
            raise InvalidRequest(f"put {name!r} in a credential, not in the URL")
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError as exc:
        raise InvalidRequest(f"no storage backend for {protocol!r} URLs") from exc
    except ImportError as exc:
        raise InvalidRequest(f"the backend for {protocol!r} URLs is not installed: {exc}") from exc
    return protocol


_SECRET_WORDS = (
    "password",
    "passphrase",
    "secret",
    "token",
    "key",
    "auth",
    "signature",
    "sig",
    "sas",
)


def looks_secret(name: str) -> bool:
    """Whether an option or URL parameter named ``name`` holds a secret (and so belongs in the
    encrypted credentials, never in options or a URL, which are shown and logged)."""
    lowered = name.lower()
    return lowered == "headers" or any(word in lowered for word in _SECRET_WORDS)


def check_health(name: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Reach the storage and look at its root: reachable, latency and the error if any. The
    root is looked at, not listed: a root of a million objects was listed whole, page by page
    on an object store, at every check."""
    started = time.perf_counter()
    checked_at = datetime.now(UTC).isoformat()
    error = None
    try:
        storage = open_storage(name, url, options)
        storage.fs.info(storage.root)
    except FileNotFoundError:
        # The server answered: the root is simply not there yet (an empty S3 prefix, a folder
        # the first transfer will create).
        error = f"the root {url} does not exist yet"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        return {"reachable": False, "latency_ms": None, "checked_at": checked_at, "error": error}
    latency = round((time.perf_counter() - started) * 1000, 1)
    return {"reachable": True, "latency_ms": latency, "checked_at": checked_at, "error": error}
