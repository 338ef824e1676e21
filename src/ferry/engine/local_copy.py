"""A small object from one local disk to another in a handful of system calls.

A tree of thousands of small files spends its time per file, not per byte: through fsspec a
4 KiB copy made some fifteen filesystem calls (info, exists, isdir, makedirs, three opens, size,
move), each with its own path handling, and the Python around them cost more than the bytes.
Here the object is read in one call, written in one, read back from the same descriptor and
renamed into place. The caller (``engine.copy``) decides when this applies and tells which side
an error came from.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from ferry.engine.checksums import RunningChecksum

# An object up to this size is read into memory in one call (larger ones are streamed).
WHOLE_READ_MAX = 4 * 1024 * 1024

_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class SourceChanged(Exception):
    """The source's size is not what it was a moment ago: it is being written to."""

    def __init__(self, read: int, expected: int) -> None:
        super().__init__(f"{read} bytes read, {expected} expected")
        self.read = read
        self.expected = expected


def read_whole(path: str, size: int) -> bytes:
    """The whole file, which ``stat`` said is ``size`` bytes long; one byte more is asked for
    so that a file still growing is caught."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        while len(data) < size and (more := os.read(fd, size + 1 - len(data))):
            data += more  # a short read (a network filesystem, a signal)
    finally:
        os.close(fd)
    if len(data) != size:
        raise SourceChanged(len(data), size)
    return data


def create_new(path: str) -> int:
    """A descriptor on a new file at ``path``, opened for writing and reading back. Whatever
    sits at that name (an earlier attempt's leftover, a planted link) is removed first: the
    name is this task's own, and ``O_NOFOLLOW`` with ``O_EXCL`` never writes through a link."""
    try:
        return os.open(path, _CREATE, 0o666)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, _CREATE, 0o666)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_back(fd: int, size: int) -> bytes:
    """What the file now holds, read through the same descriptor (one byte more than was
    written, so that anything extra shows)."""
    data = os.pread(fd, size + 1, 0)
    while len(data) < size + 1 and (more := os.pread(fd, size + 1 - len(data), len(data))):
        data += more
    return data


def open_source(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def kernel_copy(source_fd: int, fd: int, size: int) -> None:
    """``size`` bytes from ``source_fd`` to ``fd`` by the kernel, none through Python; one
    byte more is tried so that a file still growing is caught."""
    copied = 0
    while copied < size and (sent := os.sendfile(fd, source_fd, copied, size - copied)):
        copied += sent
    if copied < size or os.sendfile(fd, source_fd, copied, 1):
        raise SourceChanged(copied if copied < size else size + 1, size)


class ReadBack:
    """The verification pass of a large local copy, run beside it: each block is read back
    from the file, on a thread of its own, once it has been written. After the copy only the
    last block is left to read, where reading the whole file again took as long as a second
    copy (the checksum releases the interpreter lock, so the two passes share the cores).

    Blocks are read back in the order they were written (one thread), so the running checksum
    is the whole file's."""

    def __init__(self, path: str, checksum: RunningChecksum) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._checksum = checksum
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-back")
        self._reads: list[Future[None]] = []

    def written(self, offset: int, length: int) -> None:
        """Bytes ``offset`` to ``offset + length`` are in the file (flushed): read them back."""
        self._reads.append(self._thread.submit(self._read, offset, length))

    def _read(self, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            block = os.pread(self._fd, end - offset, offset)
            if not block:
                raise OSError(f"{end - offset} bytes written at {offset} could not be read back")
            self._checksum.update(block)
            offset += len(block)

    def hexdigest(self) -> str:
        """The checksum of everything read back, once every read has ended."""
        for read in self._reads:
            read.result()
        return self._checksum.hexdigest()

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)
        os.close(self._fd)
