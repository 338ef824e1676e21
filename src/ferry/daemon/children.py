"""Child processes and their reaper: the server's local agents, restarted when they die.

Like DaemonCore's Create_Process and reapers: each child is watched by a task that learns of its
exit at once, says why in the log, and starts a new one after a backoff (1 s, doubling to 60 s,
back to 1 s once a child has run for a minute). And DaemonCore's hung-child rule: a child whose
heartbeats stop for the hung timeout is killed (a stopped or deadlocked process answers no
other signal) and replaced."""

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
    started_at: float = 0.0  # loop time of the current process's start
    killed_because: str | None = None
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
            why = f" ({child.killed_because})" if child.killed_because else ""
            child.killed_because = None
            log.warning(
                "child %s exited with status %s%s; restarting in %.0f s",
                child.spec.name,
                returncode,
                why,
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
            if self._stopping.is_set():
                return 0  # stopped while its environment was being made: start nothing
            child.process = await asyncio.create_subprocess_exec(
                *child.spec.command, env=env, preexec_fn=_die_with_parent
            )
        except Exception:
            log.exception("child %s could not be started", child.spec.name)
            return -1
        child.started_at = asyncio.get_running_loop().time()
        log.info("child %s started (pid %d)", child.spec.name, child.process.pid)
        return await child.process.wait()

    async def kill_hung(
        self, silent_for: Callable[[str], Awaitable[float | None]], timeout: float
    ) -> list[str]:
        """Kill every child that has run longer than ``timeout`` and whose heartbeats have
        stopped for longer than that (``silent_for(name)``: seconds since its last one); the
        reaper replaces it. Return the names killed."""
        now = asyncio.get_running_loop().time()
        killed = []
        for child in self._children:
            process = child.process
            if process is None or process.returncode is not None or self._stopping.is_set():
                continue
            if now - child.started_at <= timeout:
                continue
            silent = await silent_for(child.spec.name)
            if silent is None or silent <= timeout:
                continue
            child.killed_because = f"hung: no heartbeat for {silent:.0f} s, killed"
            log.warning(
                "child %s (pid %d): no heartbeat for %.0f s: killing and replacing it",
                child.spec.name,
                process.pid,
                silent,
            )
            send_signal(process, signal.SIGKILL)
            killed.append(child.spec.name)
        return killed

    async def stop(self, grace: float, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to every child (SIGTERM: finish and give back; SIGQUIT: give back
        at once), SIGKILL those still alive after ``grace`` seconds, reap all."""
        self._stopping.set()
        running = [c.process for c in self._children if c.process and c.process.returncode is None]
        for process in running:
            send_signal(process, signum)
            send_signal(process, signal.SIGCONT)  # a stopped child must see it
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), grace)
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    log.warning(
                        "child pid %d did not stop within %.0f s: killed", process.pid, grace
                    )
                    send_signal(process, signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in running))
        for child in self._children:
            if child.watcher is not None:
                child.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.watcher
        for child in self._children:  # one started while this was stopping the others
            late = child.process
            if late is not None and late.returncode is None and late not in running:
                send_signal(late, signal.SIGKILL)
                await late.wait()


def send_signal(process: asyncio.subprocess.Process, signum: int) -> None:
    """Send ``signum`` to a child not yet reaped. Not through ``Process.send_signal``: the
    ``Popen`` under it first polls the child (``waitpid``), which reaps one that has just
    died, and asyncio's own watcher then finds no such child and reports its status as 255.
    Until the watcher has reaped it, the child's pid cannot have been given to another."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
