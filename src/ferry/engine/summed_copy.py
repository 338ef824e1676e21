"""A large local file copied by the kernel while its blocks are summed on threads beside it
(``copy_summed``), and the pass that sums a local file as it is written (``ReadBack``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ferry.engine.checksums import RunningChecksum, new_checksum
from ferry.engine.local_copy import UnnamedFile, open_source, send
from ferry.engine.requests import BLOCK_SIZE, CopyRequest, on_destination
from ferry.errors import TransferCanceled

if TYPE_CHECKING:
    from ferry.engine.resume import Resumption


class ReadBack:
    """A pass that sums a local file beside its copy: each block is read, on a thread of its
    own, once it has been written (the verification pass), or once the kernel has copied it
    (the source's pass of ``copy_summed``). After the copy only the last block is left to
    read, where reading the whole file again took as long as a second copy (the checksum
    releases the interpreter lock, so the passes share the cores).

    Blocks are read in the order they were handed on (one thread), so the running checksum is
    the whole file's."""

    def __init__(self, fd: int, checksum: RunningChecksum) -> None:
        self._fd = os.dup(fd)  # its own: closed when the pass ends, whoever closes the other
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


def copy_summed(
    request: CopyRequest,
    source: str,
    copy: UnnamedFile,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool],
    resumption: Resumption | None = None,
) -> tuple[int, str, str]:
    """A local file copied by the kernel into a new file (``copy``), block by block, none of
    its bytes through Python, while two ``ReadBack`` passes sum each block once it is copied:
    one reads the source, one reads the copy back (an ``UnnamedFile`` until then). Return the
    bytes copied, the source's sum and the copy's; the two differ when a byte was damaged on
    the way, or changed in the source meanwhile (either way, not a copy to keep). Copying
    through a buffer in Python, then reading it back, cost a third more than this for 1 GiB;
    the sums on their threads use the second core while the kernel copies. A resumable
    copy (``engine.resume.Resumption``) goes on from its offset, with its sums, and records
    its checkpoints."""
    if resumption is None:
        source_sum, copy_sum = new_checksum(request.checksum), new_checksum(request.checksum)
    else:
        source_sum, copy_sum = resumption.source_sum, resumption.written_sum
    assert source_sum is not None
    assert copy_sum is not None
    with contextlib.ExitStack() as stack:
        source_fd = open_source(source)
        stack.callback(os.close, source_fd)
        reading = ReadBack(source_fd, source_sum)
        stack.callback(reading.close)
        fd = copy.fd
        with on_destination:
            checking = ReadBack(fd, copy_sum)
            stack.callback(checking.close)
        copied = resumption.offset if resumption is not None else 0
        while True:
            if should_stop():
                raise TransferCanceled(request.source_label)
            sent = send(fd, source_fd, copied, BLOCK_SIZE)
            if not sent:
                break
            reading.written(copied, sent)
            with on_destination:
                checking.written(copied, sent)
            copied += sent
            progress(sent)
            if resumption is not None:  # the source's sum is taken once its reads are done
                with on_destination:
                    resumption.reached(copied, lambda: _durable(fd, reading))
        read = reading.hexdigest()
        with on_destination:
            return copied, read, checking.hexdigest()


def _durable(fd: int, reading: ReadBack) -> None:
    reading.hexdigest()  # every block handed on is summed
    os.fsync(fd)
