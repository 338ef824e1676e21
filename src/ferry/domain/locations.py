"""Locations inside storages: ``STORAGE:PATH``, confined to the storage root.

A path inside a storage is relative to its root. Absolute paths and ``..`` that climb out are
refused here, before anything touches a storage; symlinks that lead out are refused by the
engine, which is the only layer that can see them.

An endpoint outside the registry is written as a URL, ``https://host/path``: its "storage" is
the URL's scheme and server (``https://host``), its path what follows. Whether such endpoints
may be used at all is the server's policy (``ferry.scheduler.guard.EndpointPolicy``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ferry.errors import InvalidLocation, LocalUrlRefused, PathOutsideStorage

_STORAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_ENDPOINT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

# The syntax ``parse_location`` takes, as the API documents it (a JSON Schema pattern: no
# lookaround). ``STORAGE:PATH``, the path relative and without NUL; or
# ``SCHEME://HOST[/PATH]`` with no user, query or fragment. A path that climbs out of its
# storage with ``..`` passes the pattern and is refused by ``confine_path``.
LOCATION_PATTERN = (
    r"^(?:[A-Za-z][A-Za-z0-9_.-]{0,62}:(?:[^/\\\x00][^\x00]*)?"
    r"|[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\x00]+(?:/[^?#\x00]*)?)$"
)


@dataclass(frozen=True, slots=True)
class Location:
    """A normalized path inside a named storage; ``path`` is "" for the root."""

    storage: str
    path: str

    def __str__(self) -> str:
        if is_endpoint(self.storage):
            return f"{self.storage}/{self.path}"
        return f"{self.storage}:{self.path}"

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def child(self, relative: str) -> Location:
        if self.path and "\x00" not in relative and _is_normal(relative):
            # A listing's usual name below a folder: joined, it is as normal as both parts.
            return Location(self.storage, f"{self.path}/{relative}")
        return Location(
            self.storage, confine_path(self.storage, posixpath.join(self.path, relative))
        )


def parse_location(text: str) -> Location:
    """Parse ``STORAGE:PATH`` (``local:data/a.csv``), the path empty for the root; or the URL
    of an endpoint outside the registry (``https://host/data/a.csv``)."""
    if _ENDPOINT.match(text):
        return _endpoint_location(text)
    storage, sep, path = text.partition(":")
    if not sep:
        raise InvalidLocation(text, "expected STORAGE:PATH, e.g. local:data/a.csv")
    if not _STORAGE_NAME.match(storage):
        raise InvalidLocation(text, f"{storage!r} is not a storage name")
    return Location(storage, confine_path(storage, path))


def split_location(text: str) -> Location:
    """A location Ferry wrote itself (a task's, as stored and as leased): split, not parsed
    and checked again. It was checked when the task was made, and whoever opens it confines
    its path once more (``StorageFS.resolve``)."""
    if "://" in text:
        return parse_location(text)
    storage, _, path = text.partition(":")
    return Location(storage, path)


def confine_path(storage: str, path: str) -> str:
    """Normalize ``path`` relative to the storage root, refusing anything that leaves it."""
    if "\x00" in path:
        raise InvalidLocation(f"{storage}:{path}", "NUL character in path")
    if path.startswith("/") or path.startswith("\\"):
        raise PathOutsideStorage(storage, path)
    if _is_normal(path):
        return path
    normalized = posixpath.normpath(path) if path else ""
    if normalized in (".", ""):
        return ""
    if normalized == ".." or normalized.startswith("../"):
        raise PathOutsideStorage(storage, path)
    return normalized


def _is_normal(path: str) -> bool:
    """Whether ``path`` is already what ``normpath`` would make of it: not empty, and no
    empty, ``.`` or ``..`` segment (the common case, checked without splitting)."""
    framed = f"/{path}/"
    return bool(path) and "//" not in framed and "/./" not in framed and "/../" not in framed


def _endpoint_location(text: str) -> Location:
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # an unclosed IPv6 bracket
        raise InvalidLocation(text, str(exc)) from exc
    if parts.scheme in ("file", "local"):
        raise LocalUrlRefused(text)
    if not _SCHEME.fullmatch(parts.scheme or "") or not parts.netloc:
        raise InvalidLocation(text, "expected SCHEME://HOST/PATH")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidLocation(
            text, "an endpoint URL carries no user, query or fragment: register a storage"
        )
    storage = f"{parts.scheme}://{parts.netloc}"
    # A URL's path is percent-encoded; a location's path is the object's name.
    return Location(storage, confine_path(storage, unquote(parts.path).lstrip("/")))


def is_within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, both written alike: relative to one
    root ("" or "." being the root itself, which holds every such path) or absolute ("/"
    holding every absolute path). Compared by whole segments, so that ``data2`` is not within
    ``data``. The one containment test: a path kept inside its storage, out of a protected
    folder, or inside a tree is judged here."""
    if folder in ("", "."):
        return True
    base = folder.rstrip("/")
    return path in (folder, base) or path.startswith(base + "/")


def is_endpoint(storage: str) -> bool:
    """Whether a location's storage is the URL of an endpoint outside the registry."""
    return "://" in storage


def is_storage_name(name: str) -> bool:
    return bool(_STORAGE_NAME.match(name))
