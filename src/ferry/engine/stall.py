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


@contextmanager
def watched_reads(
    handle: Any, location: str, stall_s: float | None
) -> Iterator[Callable[[int], bytes]]:
    """A ``read(n)`` for ``handle`` that raises ``TransferStalled`` after ``stall_s`` without
    data. Each read runs in a daemon thread: one that never returns is abandoned to the
    backend's own timeout and never keeps the agent from exiting."""
    if stall_s is None:
        yield handle.read
        return

    def read(size: int) -> bytes:
        outcome: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        def run() -> None:
            try:
                outcome.put((True, handle.read(size)))
            except BaseException as exc:
                outcome.put((False, exc))

        threading.Thread(target=run, name="read", daemon=True).start()
        try:
            ok, value = outcome.get(timeout=stall_s)
        except queue.Empty:
            raise TransferStalled(location, stall_s) from None
        if not ok:
            raise value
        block: bytes = value
        return block

    yield read
