"""Copy processes for ``ferry copy``: batches of small local objects copied in processes of
their own.

A tree of small files costs per file, in Python, and one process copies them on one core at a
time whatever its thread count (the interpreter's lock). ``StandaloneCopy`` forks these
processes when its copy starts, before any copy thread exists, and pairs each with one copy
thread: the thread sends the process a batch of small objects and records what comes back.
Large objects, and every storage that is not a local disk, stay with the threads: their bytes
move in the kernel or on the network with the lock released, and their progress is seen block
by block. A process shares the copy's stop event; it ignores Ctrl-C (the terminal sends it to
the whole process group: the parent stops the copy) and ends when its parent's end of the pipe
closes, however the parent died.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from ferry.engine.storages import remembered_folders

# Processes are forked: a child has the copy's storages, options and stop event as they are,
# with no interpreter to start and nothing to import.
FORK = multiprocessing.get_context("fork")


class CopyProcess:
    """One forked process that applies ``copy`` to each item of the batches it is sent."""

    def __init__(self, copy: Callable[[Any], Any], others: Sequence[CopyProcess] = ()) -> None:
        here, there = FORK.Pipe()
        inherited = [other.conn for other in others] + [here]
        self.process = FORK.Process(
            target=_serve, args=(there, inherited, copy), name="ferry-copy", daemon=True
        )
        self.process.start()
        there.close()
        self.conn: Connection = here

    def copy(self, items: list[Any]) -> list[Any] | None:
        """What ``copy`` gave for each of ``items``, in order; ``None`` when the process is
        gone (killed, or out of memory): how its batch ended is not known."""
        try:
            self.conn.send(items)
            results: list[Any] = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            return None
        return results

    @property
    def exit_code(self) -> int | None:
        return self.process.exitcode

    def close(self) -> None:
        """Tell the process to end, and wait for it (killed if it does not end in 5 s)."""
        with contextlib.suppress(OSError):  # it is gone already
            self.conn.send(None)
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _serve(conn: Connection, inherited: list[Connection], copy: Callable[[Any], Any]) -> None:
    for parent_end in inherited:  # else a parent's death would not close this process's pipe
        parent_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with remembered_folders():
        while True:
            try:
                items = conn.recv()
            except (EOFError, OSError):
                return
            if items is None:
                return
            conn.send([copy(item) for item in items])
