"""Passive transfers, the engine's side (the transfer daemon's write-files and read-files): one
end is the client's machine, which streams the object through the API. The same rules as any
copy: a temporary name beside the destination, the checksum on the bytes as they pass, the
write verified (size, checksum read back) before it is moved into place, nothing half-written
left behind."""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator
from typing import Any

from ferry.domain.options import Checksum, Overwrite
from ferry.engine.checksums import format_checksum, new_checksum
from ferry.engine.copy import (
    BLOCK_SIZE,
    CopyOutcome,
    CopyState,
    checksum_of,
    clear_temporary,
    modified,
    remove_earlier_attempts,
    temporary_name,
)
from ferry.engine.errors import classify
from ferry.engine.requests import EXISTS, NOT_NEWER
from ferry.engine.storages import StorageFS
from ferry.errors import ChecksumMismatch, PermanentError, TransientError


class Receiver:
    """Write one pushed object into ``storage`` at ``path``."""

    def __init__(
        self,
        storage: StorageFS,
        path: str,
        *,
        checksum: Checksum,
        overwrite: Overwrite,
        tag: str,
        attempt: int,
    ) -> None:
        self.storage = storage
        self.path = path
        self.label = f"{storage.name}:{path}"
        self.algorithm = Checksum.ADLER32 if checksum is Checksum.NONE else checksum
        self.overwrite = overwrite
        self.tag, self.attempt = tag, attempt
        self.running = new_checksum(self.algorithm)
        self.received = 0
        self._handle: Any = None
        self.destination = ""
        self.temporary = ""

    def open(self, mtime: float | None = None) -> CopyOutcome | None:
        """Get ready; an outcome (SKIPPED) when the destination is kept as it is."""
        try:
            self.destination = self.storage.resolve(self.path)
            fs = self.storage.fs
            if fs.exists(self.destination):
                if fs.isdir(self.destination):
                    raise PermanentError(f"{self.label} is a folder: not replaced by a file")
                if self.overwrite is Overwrite.NEVER:
                    return CopyOutcome(CopyState.SKIPPED, reason=EXISTS)
                if self.overwrite is Overwrite.IF_NEWER and not _newer(mtime, fs, self.destination):
                    return CopyOutcome(CopyState.SKIPPED, reason=NOT_NEWER)
            fs.makedirs(posixpath.dirname(self.destination), exist_ok=True)
            self.storage.resolve(self.path)  # again, now that the folders exist
            remove_earlier_attempts(self.storage, self.destination, self.tag, self.attempt)
            self.temporary = temporary_name(self.destination, self.tag, self.attempt)
            clear_temporary(self.storage, self.temporary)
            self._handle = fs.open(self.temporary, "wb")
        except Exception as exc:
            raise classify(exc, self.label, destination=True) from exc
        return None

    def write(self, block: bytes) -> None:
        assert self.running is not None
        self.running.update(block)
        try:
            self._handle.write(block)
        except Exception as exc:
            raise classify(exc, self.label, destination=True) from exc
        self.received += len(block)

    def finish(self, size: int | None, checksum: str | None) -> CopyOutcome:
        """Verify against what the client said it sent, read back, move into place."""
        assert self.running is not None
        digest = self.running.hexdigest()
        shown = format_checksum(self.algorithm, digest)
        try:
            self._handle.close()
            self._handle = None
            if size is not None and size != self.received:
                raise TransientError(f"{self.label}: {self.received} of {size} bytes arrived")
            if checksum is not None and checksum.lower() != shown:
                raise ChecksumMismatch(self.label, checksum, shown)
            written = checksum_of(self.storage, self.temporary, self.algorithm)
            if written != digest:
                raise ChecksumMismatch(self.label, shown, format_checksum(self.algorithm, written))
            self.storage.move_into_place(self.temporary, self.destination)
        except BaseException:
            self.abort()
            raise
        return CopyOutcome(CopyState.DONE, self.received, shown)

    def abort(self) -> None:
        """Nothing of this object stays: the temporary file goes."""
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.close()
            self._handle = None
        if self.temporary:
            with contextlib.suppress(Exception):
                self.storage.fs.rm_file(self.temporary)


def _newer(mtime: float | None, fs: Any, destination: str) -> bool:
    theirs = modified(fs.info(destination))
    return mtime is None or theirs is None or mtime > theirs


def describe(storage: StorageFS, path: str, checksum: Checksum) -> tuple[int, str]:
    """Size and checksum of an object about to be pulled (read once before it is sent, so the
    client can check what it received before keeping it)."""
    algorithm = Checksum.ADLER32 if checksum is Checksum.NONE else checksum
    full = storage.resolve(path)
    try:
        info = storage.fs.info(full)
        if info.get("type") == "directory":
            raise IsADirectoryError(full)
        digest = checksum_of(storage, full, algorithm)
    except Exception as exc:
        raise classify(exc, f"{storage.name}:{path}") from exc
    return int(info.get("size") or 0), format_checksum(algorithm, digest)


def blocks(storage: StorageFS, path: str) -> Iterator[bytes]:
    """The object's bytes in large blocks."""
    with storage.fs.open(storage.resolve(path), "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            yield block
