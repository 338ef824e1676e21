"""Storages as fsspec filesystems, with every path confined to the storage root."""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import fsspec
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from ferry.domain.locations import confine_path, is_within
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
    # What its credentials hold: cut out of every error text made about it (``redact``).
    secrets: frozenset[str] = frozenset()

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
            real = self._refuse_symlink_escape(full, path, self._linked_below_root(full))
            self._refuse_protected(path, relative, real)
        return full

    def confined(self, path: str) -> str:
        """``path`` normalized below the root ("" for the root), refused if it leaves the root
        or is inside a protected path by its name. What links lead to is not looked at: for
        those who then walk down with ``folder_at``, which follows none."""
        relative = confine_path(self.name, path)
        if self.protected and within(relative, self.protected):
            raise ProtectedPath(self.name, path)
        return relative

    def folder_at(
        self,
        relative: str,
        opened: dict[tuple[str, str], int],
        *,
        create: bool,
        writing: bool = False,
    ) -> int | None:
        """A descriptor on the folder ``relative`` (from ``confined``), reached from the root
        one folder at a time without following a link, so that no link planted on the way,
        before or after, can lead a write or a read elsewhere; folders missing on the way are
        made when ``create``. ``None`` when a link or something not a folder is on the way,
        or a folder is missing (the path-checking way handles those). The descriptors of the
        folders passed are kept in ``opened``, whose owner closes them. ``writing``: a folder
        found in ``opened`` is looked at again, to be still the one at its name."""
        key = (self.root, relative)
        if (fd := opened.get(key)) is not None:
            # A folder to write into is still the one at its name: one renamed away and made
            # again (or removed) meanwhile is walked to again, not written into where it went.
            if not writing or not relative or self._in_place(relative, fd, opened):
                return fd
            _forget(opened, self.root, relative)
        if relative:
            parent, _, name = relative.rpartition("/")
            above = self.folder_at(parent, opened, create=create)
            if above is None:
                return None
            fd = _open_folder(above, name, create)
        else:
            try:  # the root itself may be a link: it is the administrator's
                fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                fd = None
        if fd is not None:
            opened[key] = fd
        return fd

    @property
    def below_root(self) -> str:
        """What every backend path inside the storage starts with ("" for a root named "")."""
        return self.root.rstrip("/") + "/" if self.root else ""

    def relative(self, full: str) -> str:
        """The inverse of ``resolve``: a backend path back to a path inside the storage."""
        stripped = full.rstrip("/")
        if stripped == self.root.rstrip("/"):
            return ""
        prefix = self.below_root
        if not stripped.startswith(prefix):
            raise PathOutsideStorage(self.name, full)
        return stripped[len(prefix) :]

    def _in_place(self, relative: str, fd: int, opened: dict[tuple[str, str], int]) -> bool:
        parent, _, name = relative.rpartition("/")
        above = opened.get((self.root, parent))
        if above is None:
            return False
        try:
            return os.path.samestat(os.lstat(name, dir_fd=above), os.fstat(fd))
        except OSError:
            return False

    def _linked_below_root(self, full: str) -> bool:
        """Whether a component of ``full`` below the root is a symbolic link (or cannot be
        told): two or three ``lstat`` calls where a full ``realpath`` walks every component
        from ``/``."""
        root = self.root.rstrip("/")
        if not full.startswith(root + "/"):
            return full != root
        current = root
        for part in full[len(root) + 1 :].split("/"):
            current = f"{current}/{part}"
            try:
                status = os.lstat(current)
            except FileNotFoundError:
                return False  # nothing further down exists yet
            except OSError:
                return True
            if stat.S_ISLNK(status.st_mode):
                return True
        return False

    @cached_property
    def _real_root(self) -> str:
        # Once per opened storage: an agent resolves paths several times per object.
        return os.path.realpath(self.root)

    def _refuse_protected(self, path: str, relative: str, real: str | None) -> None:
        """Refuse a path that is, or is inside, a protected one: by its name, and, when a link
        is on its way, by where it leads (``real``: a link inside the root may point there)."""
        if not self.protected:
            return
        if real is not None:  # inside the real root: the escape check passed
            below = self._real_root.rstrip("/") + "/"
            relative = real[len(below) :] if real.startswith(below) else ""
        if within(relative, self.protected):
            raise ProtectedPath(self.name, path)

    def _refuse_symlink_escape(self, full: str, path: str, linked: bool) -> str | None:
        """Refuse a path a link on its way leads out of the root; where it leads, if linked."""
        if not linked:
            return None  # normalized, no "..", no link below the root: it cannot lead out
        real_root = self._real_root
        real = os.path.realpath(full)
        if not is_within(real, real_root):
            raise PathOutsideStorage(self.name, path)
        return real


_IN_PROCESS = frozenset({"memory", "mock"})


class _BatchFolders(threading.local):
    # Descriptors on the folders a batch of small local copies has walked down, per storage
    # root and folder: one storage's walk stands for the folders below its own root only.
    opened: dict[tuple[str, str], int] | None = None


_batch = _BatchFolders()


@contextlib.contextmanager
def remembered_folders() -> Iterator[None]:
    """While inside, this thread's small local copies keep the descriptors of the folders
    they walk down (``StorageFS.folder_at``), and walk down each folder once: a batch of
    small objects lies in a few folders. A folder held open is the folder the walk found,
    not whatever a link planted at its name later points to; a folder moved away meanwhile
    is still written into, where it now is (only by whoever may write there moved it)."""
    outer, _batch.opened = _batch.opened, {}
    try:
        yield
    finally:
        opened, _batch.opened = _batch.opened, outer
        close_folders(opened)


def batch_folders() -> dict[tuple[str, str], int] | None:
    """The folders this thread's batch holds open, if it is inside ``remembered_folders``."""
    return _batch.opened


def close_folders(opened: dict[tuple[str, str], int] | None) -> None:
    for fd in (opened or {}).values():
        os.close(fd)


def _forget(opened: dict[tuple[str, str], int], root: str, relative: str) -> None:
    """Close and drop the folder ``relative`` of ``root`` and every folder held below it."""
    below = relative + "/"
    for key in [k for k in opened if k[0] == root and (k[1] == relative or k[1].startswith(below))]:
        os.close(opened.pop(key))


_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_folder(above: int, name: str, create: bool) -> int | None:
    """The folder ``name`` inside the folder ``above``, not through a link; made first when
    missing and ``create``. ``None`` for a link, a file, or any error (the path-checking way
    says which, and raises it)."""
    try:
        return os.open(name, _FOLDER, dir_fd=above)
    except FileNotFoundError:
        if not create:
            return None
    except OSError:
        return None
    try:
        os.mkdir(name, 0o777, dir_fd=above)
    except FileExistsError:
        pass  # made meanwhile: the open below tells what it is
    except OSError:
        return None
    try:
        return os.open(name, _FOLDER, dir_fd=above)
    except OSError:
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
    return StorageFS(
        name=name,
        fs=fs,
        root=storage_root(fs, root),
        protected=protected,
        secrets=secret_values(options),
    )


# Shorter strings are not taken for secrets: "[redacted]" in place of every "a" or "ok" in an
# error text would say less than it hides.
SECRET_MIN = 4


def secret_values(options: dict[str, Any]) -> frozenset[str]:
    """The strings held, at any depth, by the options whose names say secret (the credentials
    among them: a password, a key, the password of ``auth=["user", "password"]``)."""
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= SECRET_MIN:
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    for name, value in options.items():
        if not looks_secret(name):
            continue
        if _is_user_and_password(value):
            collect(value[1])  # the user's name is no secret, and may well be in a path
        else:
            collect(value)
    return frozenset(found)


def _is_user_and_password(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], str)


def redact(text: str, secrets: frozenset[str]) -> str:
    """``text`` with every secret in ``secrets`` replaced (the longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def storage_root(fs: Any, root: str) -> str:
    """The root path as the backend names it, without a trailing "/". A backend whose paths
    have no leading "/" (WebDAV) names its own root "", which "/" would not match: a storage
    rooted there listed "ne.bin" for "one.bin", and refused its folders as outside."""
    if root == "" and fs.root_marker == "":
        return ""
    return root.rstrip("/") or "/"


def within(relative: str, protected: Sequence[str]) -> bool:
    """Whether ``relative`` (a normalized path below a root, "" for the root) is one of
    ``protected`` or inside one ("." stands for the root itself)."""
    return any(is_within(relative, p) for p in protected)


def is_local_url(url: str) -> bool:
    """Whether a storage URL names a local disk, told without opening it (opening some
    backends connects to their host)."""
    return "://" not in url or url.startswith(("file://", "local://"))


def _webdav_server(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``webdav://host:port/path`` (or ``webdavs://`` for TLS) as webdav4 wants it: the server
    in ``base_url`` and the path in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("webdav", "webdavs") or not parts.netloc:
        return url, options
    scheme = "https" if parts.scheme == "webdavs" else "http"
    options.setdefault("base_url", f"{scheme}://{parts.netloc}")
    if isinstance(options.get("auth"), list):  # ["user", "password"] as JSON gives it
        options["auth"] = tuple(options["auth"])  # webdav4 (httpx) takes a pair, not a list
    return f"webdav://{parts.path.lstrip('/')}", options


def check_url(url: str) -> str:
    """The protocol of a storage URL, if fsspec has a backend for it and the URL carries no
    password (those go in credentials, encrypted, never in a URL that is shown and logged)."""
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in url):
        raise InvalidRequest("a storage URL may not hold control characters (NUL, newlines…)")
    parts = urlsplit(url)
    protocol = {"webdavs": "webdav"}.get(parts.scheme, parts.scheme) or "file"
    if protocol in ("file", "local") and parts.netloc not in ("", "localhost"):
        raise InvalidRequest(
            f"file:// URLs name a local folder, not a host ({parts.netloc!r}): file:///path"
        )
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
        error = redact(f"{type(exc).__name__}: {exc}", secret_values(options))
        error = error.splitlines()[0][:500]
        return {"reachable": False, "latency_ms": None, "checked_at": checked_at, "error": error}
    latency = round((time.perf_counter() - started) * 1000, 1)
    return {"reachable": True, "latency_ms": latency, "checked_at": checked_at, "error": error}
