"""Resume of an interrupted large copy: an attempt that died keeps its ``.part``, and the next
attempt of the same task continues it once it has verified what it keeps.

A copy of an object of at least ``CopyRequest.resume_min_bytes`` into a local or SFTP
destination writes its temporary file under a name (a smaller one, or a local one without
resume, is written to a file with no name until it is verified), and every
``checkpoint_every`` bytes it makes what it wrote durable, then rewrites a small record beside it
(``<part>.resume``): how many bytes of the ``.part`` are known, the checksum of those bytes as
they were read from the source, and the source's identity when the copy began (size,
modification time, inode, entity tag).

The next attempt takes the latest earlier attempt's ``.part`` and keeps its first bytes only
when nothing is doubtful: a record that reads, for the same source path, identity and checksum
algorithm; a ``.part`` at least as long as the record says; and the checksum of the kept bytes,
read again from the ``.part``, equal to the recorded one. The ``.part`` is then cut back to
the checkpoint, renamed to this attempt's temporary name, and the copy goes on from there (a
local or SFTP source read from that offset, an HTTP one with a ``Range`` request). Anything
else starts from byte 0, and the agent's log says why. The running checksums are fed with the
kept bytes as they are verified: the checksum compared at the end covers the whole file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferry.domain.options import Checksum
from ferry.engine.checksums import RunningChecksum, new_checksum
from ferry.engine.local_copy import UnnamedFile, create_new
from ferry.engine.requests import BLOCK_SIZE, CopyRequest, temporary_name
from ferry.engine.storages import StorageFS

log = logging.getLogger("ferry.engine")

RESUME_MIN_BYTES = 64 * 1024 * 1024  # the agents' default threshold
CHECKPOINT_MAX = 16 * 1024 * 1024
RECORD_SUFFIX = ".resume"
_FORMAT = 1
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_RECORD = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def record_name(temporary: str) -> str:
    """The checkpoint record of the temporary file ``temporary``."""
    return temporary + RECORD_SUFFIX


def checkpoint_every(min_bytes: int) -> int:
    """Every 16 MiB, or every quarter of the threshold where it is lower (a test's)."""
    return max(64 * 1024, min(CHECKPOINT_MAX, min_bytes // 4))


def resumable(request: CopyRequest, size: Any) -> bool:
    """Whether the copy keeps a ``.part`` that a later attempt may continue: large enough,
    into a destination a file can be continued in, from a source that can be read from an
    offset, and not an archive to unpack."""
    return (
        request.resume_min_bytes is not None
        and isinstance(size, int)
        and size >= request.resume_min_bytes
        and not request.unzip
        and appendable(request.destination)
        and (appendable(request.source) or request.source.is_web)
    )


def appendable(storage: StorageFS) -> bool:
    """A local disk, or an SFTP server: a file there can be opened again and written on."""
    return storage.is_local or bool({"sftp", "ssh"} & set(storage.protocols))


def record_algorithm(checksum: Checksum) -> Checksum:
    """The checksum a record keeps: the copy's own, adler32 for a copy without one."""
    return Checksum.ADLER32 if checksum is Checksum.NONE else checksum


def _fresh(algorithm: Checksum) -> RunningChecksum:
    running = new_checksum(algorithm)
    assert running is not None
    return running


@dataclass
class Resumption:
    """One resumable copy: where it starts (``offset``, the bytes kept), the running
    checksums of what was read (``source_sum``) and of what was written (``written_sum``, for
    a local file read back as it is written), both already fed with the kept bytes, and its
    checkpoints."""

    storage: StorageFS
    temporary: str
    identity: list[Any]
    source_path: str
    algorithm: Checksum
    every: int
    offset: int = 0
    source_sum: RunningChecksum = field(init=False)
    written_sum: RunningChecksum = field(init=False)
    recorded: int = 0  # the bytes the last record written says are known
    _next: int = field(init=False)

    def __post_init__(self) -> None:
        self.start_over()

    def start_over(self) -> None:
        """Forget the kept bytes: the copy begins at 0."""
        self.offset, self.recorded = 0, 0
        self.source_sum, self.written_sum = _fresh(self.algorithm), _fresh(self.algorithm)
        self._next = self.every

    def kept(self, offset: int, source_sum: RunningChecksum, written: RunningChecksum) -> None:
        self.offset, self.recorded = offset, offset
        self.source_sum, self.written_sum = source_sum, written
        self._next = offset + self.every

    def reached(self, copied: int, make_durable: Callable[[], None]) -> None:
        """``copied`` bytes are written: at a checkpoint, make them durable and record them
        with the checksum of what was read (``source_sum`` holds exactly those bytes). None
        at the very end: there would be nothing left to read from there."""
        if copied < self._next or copied >= self.identity[0]:
            return
        make_durable()
        self.write_record(copied, self.source_sum.hexdigest())
        self._next = copied + self.every

    def write_record(self, offset: int, digest: str) -> None:
        record = {
            "format": _FORMAT,
            "source": self.source_path,
            "identity": self.identity,
            "algorithm": self.algorithm.value,
            "offset": offset,
            "digest": digest,
        }
        data = json.dumps(record).encode()
        path = record_name(self.temporary)
        if self.storage.is_local:  # never through a link planted at its name
            fd = os.open(path, _RECORD, 0o666)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            with self.storage.fs.open(path, "wb") as handle:
                handle.write(data)
        self.recorded = offset

    def remove(self) -> None:
        """The ``.part`` and its record, gone (the copy ended, or was canceled)."""
        for path in (self.temporary, record_name(self.temporary)):
            with contextlib.suppress(Exception):
                self.storage.fs.rm_file(path)


class PartFile(UnnamedFile):
    """The named ``.part`` of a resumable copy to a local disk, written from ``offset`` on
    (an earlier attempt's, kept, or a new one), read back as it is written."""

    def __init__(self, temporary: str, offset: int) -> None:
        self.path = temporary
        self.unnamed = False
        if offset:
            self.fd = os.open(temporary, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        else:
            self.fd = create_new(temporary)
        self.cut(offset)

    def cut(self, offset: int) -> None:
        """Cut back to ``offset`` bytes, and write from there on."""
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)


def begin(request: CopyRequest, destination: str, identity: list[Any]) -> Resumption:
    """The resumption of this attempt: the kept prefix of the latest earlier attempt's
    ``.part``, verified and renamed to this attempt's temporary name, or none (from 0; the
    log says why when an earlier ``.part`` was there and was not kept)."""
    temporary = temporary_name(destination, request.tag, request.attempt)
    resumption = Resumption(
        request.destination,
        temporary,
        identity,
        request.source_label,
        record_algorithm(request.checksum),
        checkpoint_every(request.resume_min_bytes or RESUME_MIN_BYTES),
    )
    attempt, earlier = _latest_earlier(request, destination)
    if earlier is None:
        return resumption
    why_not = _take_over(resumption, earlier)
    if why_not is not None:
        log.warning(
            "%s: the .part of an earlier attempt was not kept (%s): copying from byte 0",
            request.destination_label,
            why_not,
        )
    else:
        log.info(
            "%s: resuming at byte %d, the .part of attempt %d verified",
            request.destination_label,
            resumption.offset,
            attempt,
        )
    return resumption


def _latest_earlier(request: CopyRequest, destination: str) -> tuple[int, str | None]:
    """The latest earlier attempt that left a ``.part`` (or a lone record), and its name."""
    fs = request.destination.fs
    for attempt in range(request.attempt - 1, 0, -1):
        part = temporary_name(destination, request.tag, attempt)
        if fs.exists(part) or fs.exists(record_name(part)):
            return attempt, part
    return 0, None


def _take_over(resumption: Resumption, part: str) -> str | None:
    """Keep the verified prefix of ``part``; ``None`` when kept, else why it was not."""
    record, why_not = _read_record(resumption.storage, record_name(part))
    if record is None:
        return why_not
    if record["source"] != resumption.source_path or record["identity"] != resumption.identity:
        return "the source changed since it was written"
    if record["algorithm"] != resumption.algorithm.value:
        return f"its record is of {record['algorithm']}, this copy checks {resumption.algorithm}"
    offset = record["offset"]
    try:
        sums = _sum_prefix(resumption.storage, part, offset, resumption.algorithm)
    except OSError as exc:
        return f"it could not be read back: {exc}"
    if sums is None:
        return f"it is shorter than the {offset} bytes its record says were written"
    if sums[0].hexdigest() != record["digest"]:
        return "the checksum of its first bytes is not the one recorded as they were written"
    resumption.storage.fs.mv(part, resumption.temporary)
    with contextlib.suppress(Exception):
        resumption.storage.fs.rm_file(record_name(part))
    resumption.kept(offset, *sums)
    resumption.write_record(offset, record["digest"])
    return None


def _read_record(storage: StorageFS, path: str) -> tuple[dict[str, Any] | None, str]:
    try:
        if storage.is_local:
            fd = os.open(path, _READ)
            try:
                data = os.read(fd, 64 * 1024)
            finally:
                os.close(fd)
        else:
            data = storage.fs.cat_file(path)
        record = json.loads(data)
    except FileNotFoundError:
        return None, "no checkpoint record beside it"
    except (OSError, ValueError) as exc:
        return None, f"its checkpoint record does not read: {exc}"
    if not _well_formed(record):
        return None, "its checkpoint record does not read"
    return record, ""


def _well_formed(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("format") == _FORMAT
        and isinstance(record.get("offset"), int)
        and record["offset"] > 0
        and isinstance(record.get("digest"), str)
        and isinstance(record.get("identity"), list)
        and isinstance(record.get("source"), str)
        and isinstance(record.get("algorithm"), str)
    )


def _sum_prefix(
    storage: StorageFS, part: str, offset: int, algorithm: Checksum
) -> tuple[RunningChecksum, RunningChecksum] | None:
    """Two running checksums of the first ``offset`` bytes of ``part`` (one to go on with
    what is read, one with what is written), or ``None`` when it is shorter."""
    first, second = _fresh(algorithm), _fresh(algorithm)
    with _open_part(storage, part) as handle:
        left = offset
        while left:
            block = handle.read(min(BLOCK_SIZE, left))
            if not block:
                return None
            first.update(block)
            second.update(block)
            left -= len(block)
    return first, second


def _open_part(storage: StorageFS, part: str) -> Any:
    if not storage.is_local:
        return storage.fs.open(part, "rb")
    fd = os.open(part, _READ)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{part} is not a regular file")
    return os.fdopen(fd, "rb")
