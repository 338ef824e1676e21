"""Child processes and their reaper: the server's local agents, restarted when they die.

Like DaemonCore's Create_Process and reapers: each child is watched by a task that learns of its
exit at once, says why in the log, and starts a new one after a backoff (1 s, doubling to 60 s,
back to 1 s once a child has run for a minute)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("ferry.daemon")

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0
HEALTHY_AFTER_S = 60.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: if the server dies, even killed, the child gets SIGTERM."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildSpec:
    """How to start one child: its name, its command, and an environment made fresh each time
    (a local agent gets a new one-time secret at every start)."""

    name: str
    command: Sequence[str]
    environment: Callable[[], Awaitable[dict[str, str]]]


@dataclass
class Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, on_exit: Callable[[str, int], Awaitable[None]]) -> None:
        self._on_exit = on_exit
        self._children: list[Child] = []
        self._stopping = asyncio.Event()

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    def start(self, spec: ChildSpec) -> Child:
        child = Child(spec)
        child.watcher = asyncio.create_task(self._keep(child), name=f"child:{spec.name}")
        self._children.append(child)
        return child

    async def _keep(self, child: Child) -> None:
        backoff = BACKOFF_START_S
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            returncode = await self._run_once(child)
            if self._stopping.is_set():
                return
            log.warning(
                "child %s exited with status %s; restarting in %.0f s",
                child.spec.name,
                returncode,
                backoff,
            )
            with contextlib.suppress(Exception):
                await self._on_exit(child.spec.name, returncode)
            if loop.time() - started >= HEALTHY_AFTER_S:
                backoff = BACKOFF_START_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            child.restarts += 1

    async def _run_once(self, child: Child) -> int:
        try:
            env = {**os.environ, **await child.spec.environment()}
            child.process = await asyncio.create_subprocess_exec(
                *child.spec.command, env=env, preexec_fn=_die_with_parent
            )
        except Exception:
            log.exception("child %s could not be started", child.spec.name)
            return -1
        log.info("child %s started (pid %d)", child.spec.name, child.process.pid)
        return await child.process.wait()

    async def stop(self, grace: float) -> None:
        """SIGTERM every child, SIGKILL those still alive after ``grace`` seconds, reap all."""
        self._stopping.set()
        running = [c.process for c in self._children if c.process and c.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), grace)
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    log.warning(
                        "child pid %d did not stop within %.0f s: killed", process.pid, grace
                    )
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in running))
        for child in self._children:
            if child.watcher is not None:
                child.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.watcher
