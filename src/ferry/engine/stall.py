"""Stall detection: a read that brings no byte for ``stall_s`` seconds aborts the attempt as a
transient error, instead of holding a slot (and a lease) forever.

A blocked read cannot be interrupted from its own thread, so reads of remote sources run in a
helper thread that the copy waits on with a deadline. Local disks do not stall that way and
are read directly."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ferry.errors import TransferStalled

DEFAULT_STALL_S = 60.0


class _Readers:
    """Daemon threads that run reads, reused from one read to the next: starting a thread per
    block was most of an agent's time on small remote objects. A read that never returns keeps
    its thread (abandoned to the backend's own timeout); a new one is started when none is
    idle, so a stuck read never holds up another."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]]] = (
            queue.SimpleQueue()
        )
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, job: Callable[[], Any]) -> queue.SimpleQueue[tuple[bool, Any]]:
        outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                threading.Thread(target=self._work, name="read", daemon=True).start()
        self._jobs.put((job, outcome))
        return outcome

    def _work(self) -> None:
        while True:
            job, outcome = self._jobs.get()
            try:
                outcome.put((True, job()))
            except BaseException as exc:
                outcome.put((False, exc))
            with self._lock:
                self._idle += 1


_READERS = _Readers()


@contextmanager
def watched_reads(
    handle: Any, location: str, stall_s: float | None
) -> Iterator[Callable[[int], bytes]]:
    """A ``read(n)`` for ``handle`` that raises ``TransferStalled`` after ``stall_s`` without
    data. Reads run in daemon threads: one that never returns is abandoned to the backend's
    own timeout and never keeps the agent from exiting."""
    if stall_s is None:
        yield handle.read
        return

    def read(size: int) -> bytes:
        outcome = _READERS.run(lambda: handle.read(size))
        try:
            ok, value = outcome.get(timeout=stall_s)
        except queue.Empty:
            raise TransferStalled(location, stall_s) from None
        if not ok:
            raise value
        block: bytes = value
        return block

    yield read
