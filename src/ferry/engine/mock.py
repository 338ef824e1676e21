"""A storage that moves no data, for load tests (what gfal2's mock plugin is to FTS).

``mock://NAME`` with options ``size`` (bytes per object), ``time`` (seconds each object takes
to open), ``fail`` (probability, 0 to 1, that opening it fails), ``errno`` (the error it then
fails with, default EIO: transient), ``files`` (how many objects each folder lists) and
``folders`` (how many folders a folder lists instead of objects: a tree two levels deep of
``folders`` × ``files`` objects below any folder not named ``dir-…``). A path may override
them for one object: ``mk:data.bin?size=1048576&time=0.5``. With ``link`` (and ``peak``,
``rate``, ``falloff``) its objects are read through a simulated link whose throughput peaks
at a number of copies at once (``mock_link``).

As a source it produces ``size`` zero bytes; as a destination it swallows what it is given,
keeping only the sizes of the objects being written, which it forgets once they are moved into
place. It is registered with fsspec through the ``fsspec.specs`` entry point.
"""

from __future__ import annotations

import errno as errnos
import os
import random
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from fsspec import AbstractFileSystem
from fsspec.utils import stringify_path

from ferry.engine.mock_link import LINK_OPTIONS, LinkReader, link_of
from ferry.errors import InvalidRequest

OBJECT_PREFIX = "obj-"
FOLDER_PREFIX = "dir-"
_READ_CHUNK = 4 * 1024 * 1024
_ZEROS = bytes(_READ_CHUNK)


class MockParameters:
    __slots__ = ("errno", "fail", "files", "folders", "size", "time")

    def __init__(self, values: dict[str, Any]) -> None:
        try:
            self.size = int(values.get("size", 0))
            self.time = float(values.get("time", 0.0))
            self.fail = float(values.get("fail", 0.0))
            self.errno = int(values.get("errno", errnos.EIO))
            self.files = int(values.get("files", 0))
            self.folders = int(values.get("folders", 0))
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"mock storage option: {exc}") from exc
        counts = (self.size, self.time, self.files, self.folders)
        if min(counts) < 0 or not 0 <= self.fail <= 1:
            raise InvalidRequest("mock storage: size, time, files, folders ≥ 0 and 0 ≤ fail ≤ 1")

    def with_query(self, query: str) -> MockParameters:
        if not query:
            return self
        merged = {name: getattr(self, name) for name in self.__slots__}
        merged.update(parse_qsl(query))
        return MockParameters(merged)

    def happen(self, path: str) -> None:
        """Take the object's time, then fail with its probability."""
        if self.time:
            time.sleep(self.time)
        if self.fail and random.random() < self.fail:
            raise OSError(self.errno, os.strerror(self.errno), path)


class MockFileSystem(AbstractFileSystem):  # type: ignore[misc]
    protocol = "mock"
    root_marker = ""
    cachable = False

    def __init__(self, **options: Any) -> None:
        known = {name: options.pop(name) for name in list(options) if name in _OPTIONS}
        link = {name: options.pop(name) for name in list(options) if name in LINK_OPTIONS}
        super().__init__(**options)
        self.defaults = MockParameters(known)
        self.link = link_of(link)
        self._writing: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """fsspec's, for this one protocol: a copy calls it thirteen times per object, and the
        general one was a fifth of a zero-byte object's copy (cProfile)."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        if path.startswith("mock://"):
            path = path[7:]
        elif path.startswith("mock::"):
            path = path[6:]
        return path.rstrip("/")

    # --- what objects look like ---------------------------------------------------------------
    # A path read from may carry per-object parameters after "?"; a path written to is a name.
    def _source(self, path: str) -> tuple[str, MockParameters]:
        bare, _, query = self._strip_protocol(path).partition("?")
        return bare, self.defaults.with_query(query)

    def _written(self, path: str) -> int | None:
        with self._lock:
            return self._writing.get(self._strip_protocol(path))

    def _is_folder(self, path: str) -> bool:
        """The storage root, and with ``files`` or ``folders`` set any path but the objects it
        lists and those given parameters of their own."""
        bare, parameters = self._source(path)
        if "/" not in bare.strip("/"):
            return True
        name = bare.rstrip("/").rpartition("/")[2]
        own = "?" in path
        listing = parameters.files > 0 or parameters.folders > 0
        return listing and not own and not name.startswith(OBJECT_PREFIX)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        written = self._written(path)
        if written is not None:
            return {"name": self._strip_protocol(path), "size": written, "type": "file"}
        bare, parameters = self._source(path)
        if self._is_folder(path):
            return {"name": bare, "size": 0, "type": "directory"}
        return {"name": self._strip_protocol(path), "size": parameters.size, "type": "file"}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        if not self._is_folder(path):
            return [self.info(path)] if detail else [self._strip_protocol(path)]
        bare, parameters = self._source(path)
        folder = bare.rstrip("/")
        if parameters.folders and not folder.rpartition("/")[2].startswith(FOLDER_PREFIX):
            entries = [
                {"name": f"{folder}/{FOLDER_PREFIX}{n:05d}", "size": 0, "type": "directory"}
                for n in range(parameters.folders)
            ]
        else:
            entries = [
                {
                    "name": f"{folder}/{OBJECT_PREFIX}{n:07d}",
                    "size": parameters.size,
                    "type": "file",
                }
                for n in range(parameters.files)
            ]
        return entries if detail else [e["name"] for e in entries]

    def exists(self, path: str, **kwargs: Any) -> bool:
        # As a destination nothing stays: an object is never "already there".
        return self._written(path) is not None or self._is_folder(path)

    # --- reading and writing ------------------------------------------------------------------
    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "r" in mode:
            bare, parameters = self._source(path)
            parameters.happen(bare)
            if self.link is not None:
                return LinkReader(parameters.size, self.link)
            return _Zeros(parameters.size)
        name = self._strip_protocol(path)
        self.defaults.happen(name)
        with self._lock:
            self._writing[name] = 0
        return _Sink(self, name)

    def _wrote(self, bare: str, n: int) -> None:
        with self._lock:
            if bare in self._writing:
                self._writing[bare] += n

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        return None

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        return None

    def rm_file(self, path: str) -> None:
        with self._lock:
            if self._writing.pop(self._strip_protocol(path), None) is None:
                raise FileNotFoundError(errnos.ENOENT, "no such mock object", path)

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None:
        self.rm_file(path1)  # swallowed: moved into place is gone

    @property
    def swallows(self) -> bool:
        """What it is given cannot be read back: the copy's read-back check does not apply."""
        return True


_OPTIONS = frozenset(MockParameters.__slots__)


class _Zeros:
    """``size`` zero bytes, read in blocks."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        take = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= take
        return _ZEROS[:take] if take <= _READ_CHUNK else bytes(take)

    def close(self) -> None:
        return None

    def __enter__(self) -> _Zeros:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Sink:
    def __init__(self, fs: MockFileSystem, bare: str) -> None:
        self.fs = fs
        self.bare = bare

    def write(self, data: bytes) -> int:
        self.fs._wrote(self.bare, len(data))
        return len(data)

    def close(self) -> None:
        return None

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
