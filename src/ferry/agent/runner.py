"""The agent's work loop: keep a queue of leased tasks and chunks full, copy with a pool of
threads (a chunk of small objects in one hand-off), report results in batches (every ~200 ms
or every few hundred, a long chunk's in parts), heartbeat, obey cancels."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ferry import __version__
from ferry.agent.bandwidth import AgentBandwidth
from ferry.agent.copies import Copier
from ferry.agent.held import HeldChunk, HeldTask
from ferry.agent.local_queue import FairQueue
from ferry.agent.outbox import REPORT_EVERY_S, Outbox
from ferry.api.protocol import (
    AgentCommand,
    HeartbeatReply,
    LeaseReply,
    ReportedState,
    TaskReport,
)
from ferry.domain.chunks import is_small
from ferry.errors import AgentRefused, ApiError

log = logging.getLogger("ferry.agent")

LEASE_WAIT_S = 20.0
# How much work to hold ahead: about QUEUE_AHEAD_S of copying per slot, at least two tasks per
# slot (so a slot never waits on a poll) and at most LEASE_AHEAD_MAX (so an agent busy with small
# files does not hoard the queue, and one busy with large files holds only what it can start).
# The agent leases again when half is left: QUEUE_AHEAD_S / 2 is how long new work (another
# scope, a higher priority) may wait for its first lease, and the cap sets the throughput of
# tiny objects (256: 2,750 zero-byte objects/s over two agents, starved between leases; 1,024:
# 5,300). What it holds runs in the scheduler's order (FairQueue), not the lease order.
QUEUE_AHEAD_S = 0.2
LEASE_AHEAD_MAX = 1024
DURATION_SMOOTHING = 0.1
RETRY_DELAY_S = 1.0
STUCK_AFTER_S = 5.0
IDLE_CHECK_S = 2.0
# Single small tasks (a file list's, and a tree's from a server that does not chunk) are still
# handed to a thread several at a time; a chunk is one hand-off of its own.
SMALL_BATCH = 16
# Small objects between local disks are copied by this many threads, not by every slot: their
# copies are short system calls between stretches of Python, and eight threads taking turns at
# the interpreter lock spent more time handing it over (a hundred futex calls per object) than
# copying. A remote or large object waits on the network or the disk, and gets a slot's thread.
LOCAL_LANE_THREADS = 1
# A heartbeat due at a timetable's change comes this much after it, so the server's clock has
# passed it too.
TIMETABLE_LAG_S = 0.2


def _small(task: HeldTask) -> bool:
    """Whether the copy is short work for the CPU, to batch or lane with others."""
    return is_small(task.leased.size, unzip=task.leased.unzip, bandwidth=task.bandwidth)


class AgentRunner:
    def __init__(
        self,
        session: Any,
        *,
        max_active: int,
        grace: float = 10.0,
        idle_timeout: float = 0.0,
        resume_min_bytes: int | None = None,
        bandwidth: AgentBandwidth | None = None,
    ) -> None:
        self.session = session
        self.max_active = max_active
        self.grace = grace  # set to 0 before stopping for an immediate stop (SIGQUIT)
        self.idle_timeout = idle_timeout
        self.idle_exit = False
        self._last_busy = time.monotonic()
        self._held: dict[int, HeldTask | HeldChunk] = {}
        self._held_of: Counter[str] = Counter()  # unfinished tasks and chunks per transfer
        self._queue: FairQueue[HeldTask | HeldChunk] = FairQueue()
        self._outbox = Outbox()
        self._flush_now = asyncio.Event()
        self._capacity = asyncio.Event()
        self._copies_ended = asyncio.Event()  # set whenever a batch of copies ends
        self._unfinished = 0  # objects leased and not yet copied: queued or running
        self._units = 0  # tasks and chunks leased and not yet ended: each takes one slot
        self._mean_task_s = 1.0  # moving average of one object's copy wall time
        self._copier = Copier(resume_min_bytes, bandwidth)
        self._threads = ThreadPoolExecutor(max_workers=max_active, thread_name_prefix="copy")
        self._local_lane = ThreadPoolExecutor(
            max_workers=LOCAL_LANE_THREADS, thread_name_prefix="copy-local"
        )
        self._started_at = time.monotonic()
        self.fatal: BaseException | None = None
        # Carries out an administrator's commands that a heartbeat reply brings.
        self.obey: Callable[[list[AgentCommand]], Awaitable[None]] | None = None
        self.stuck = False  # copies that would not stop: the process must exit without them

    # --- lifecycle --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set (or the agent has been idle for ``idle_timeout``), then
        give back what has not started, let active copies finish within ``grace`` and give
        back the rest."""
        workers = [asyncio.create_task(self._work()) for _ in range(self.max_active)]
        background = [
            asyncio.create_task(self._guard(self._lease_loop(), stop)),
            asyncio.create_task(self._guard(self._report_loop(), stop)),
            asyncio.create_task(self._guard(self._heartbeat_loop(), stop)),
        ]
        if self.idle_timeout > 0:
            background.append(asyncio.create_task(self._guard(self._idle_watch(stop), stop)))
        await stop.wait()
        background[0].cancel()  # no new leases
        await self._drain(workers, self.grace)
        for task in background[1:]:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self._flush_all()
        if not self.fatal and not self.stuck:
            await self._leave()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._local_lane.shutdown(wait=False, cancel_futures=True)

    async def _leave(self) -> None:
        """A lease granted while this agent stopped never reached it: the server gives such
        leases back now rather than after their TTL."""
        try:
            released = await self.session.leave()
        except (ApiError, httpx.HTTPError) as exc:
            log.warning("could not tell the server this agent leaves: %s", exc)
            return
        if released:
            log.info("%d leases this agent never received were given back", released)

    async def _idle_watch(self, stop: asyncio.Event) -> None:
        """The transfer daemon's inactivity timeout: nothing held for ``idle_timeout``
        seconds, checked every few seconds, ends the agent cleanly."""
        every = min(IDLE_CHECK_S, self.idle_timeout / 2)
        while True:
            await asyncio.sleep(every)
            if self._held or self._outbox:
                self._last_busy = time.monotonic()
            elif time.monotonic() - self._last_busy > self.idle_timeout:
                log.info("nothing to do for %.0f s: stopping", self.idle_timeout)
                self.idle_exit = True
                stop.set()
                return

    async def _guard(self, coroutine: Any, stop: asyncio.Event) -> None:
        try:
            await coroutine
        except AgentRefused as exc:
            log.error("server refused this agent: %s", exc)
            self.fatal = exc
            stop.set()
        except Exception as exc:  # a loop that dies must not leave the agent half alive
            log.exception("agent loop crashed; stopping")
            self.fatal = exc
            stop.set()

    async def _drain(self, workers: list[asyncio.Task[None]], grace: float) -> None:
        """Give back what has not started, and the objects of running chunks not started
        yet; let active copies finish within ``grace``, then stop them."""
        while not self._queue.empty():
            held = self._queue.get_nowait()
            held.done = True
            self._units -= 1
            if isinstance(held, HeldChunk):
                held.rest = ReportedState.RELEASED
                self._unfinished -= held.count
                self._ended(held.leased.transfer)
            else:
                self._unfinished -= 1
                self._record(held, held.ended(ReportedState.RELEASED, started=False))
        active = [t for t in self._held.values() if t.started and not t.done]
        for held in active:
            if isinstance(held, HeldChunk):
                held.shutting_down = True  # its object in flight ends, the rest goes back
        try:
            await asyncio.wait_for(self._all_done(active), grace)
        except TimeoutError:
            log.warning("stopping %d copies still running after %.0f s", len(active), grace)
            for task in active:
                task.shutting_down = True
                task.canceled = True  # each removes its temporary file and reports back
            try:
                await asyncio.wait_for(self._all_done(active), STUCK_AFTER_S)
            except TimeoutError:
                # A copy blocked inside a backend call never looks at its stop flag. Its lease
                # will expire on the server; the process must still end.
                stuck = sum(not t.done for t in active)
                log.error(
                    "%d copies did not stop within %.0f s; leaving them", stuck, STUCK_AFTER_S
                )
                self.stuck = True
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _all_done(self, tasks: list[HeldTask | HeldChunk]) -> None:
        while not all(t.done for t in tasks):
            self._copies_ended.clear()
            await self._copies_ended.wait()

    # --- leasing ----------------------------------------------------------------------------
    @property
    def lease_ahead(self) -> int:
        per_slot = QUEUE_AHEAD_S / max(self._mean_task_s, 1e-4)
        return int(min(LEASE_AHEAD_MAX, max(2.0, per_slot) * self.max_active))

    async def _lease_loop(self) -> None:
        while True:
            ahead = self.lease_ahead
            room = ahead - self._unfinished
            # A chunk takes one slot whatever its objects: a slot with nothing to start leases
            # even when the objects held already fill what the agent holds ahead.
            slot_free = self._units < self.max_active
            if room < max(1, ahead // 2) and self._unfinished > 0 and not slot_free:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            lease = self.session.lease(max(room, 1), LEASE_WAIT_S)
            reply: LeaseReply | None = await self._resilient(lease)
            if reply is None:
                continue
            self._copier.learn(reply.storages)
            for leased in reply.tasks:
                held = HeldChunk.from_lease(leased) if leased.chunk else HeldTask.from_lease(leased)
                self._hold(held, reply.scopes.get(leased.scope, 1))

    def _hold(self, held: HeldTask | HeldChunk, weight: int) -> None:
        """Queue what a lease gave; a chunk counts its objects against ``lease_ahead``."""
        leased = held.leased
        self._held[held.id] = held
        self._held_of[leased.transfer] += 1
        self._units += 1
        if isinstance(held, HeldChunk):
            self._outbox.hold(held)
            self._unfinished += held.count
        else:
            self._unfinished += 1
        self._queue.put_nowait(held, scope=leased.scope, priority=leased.priority, weight=weight)

    async def _resilient(self, call: Any) -> Any:
        """Await ``call``; on a network error or a server error, wait and give ``None``."""
        try:
            return await call
        except ApiError as exc:
            if exc.status in (401, 403):
                raise AgentRefused(str(exc)) from exc
            log.warning("server answered %d: %s", exc.status, exc)
        except httpx.TransportError as exc:
            log.warning("server unreachable: %s", exc)
        await asyncio.sleep(RETRY_DELAY_S)
        return None

    # --- copying ----------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            first = await self._queue.get()
            if isinstance(first, HeldChunk):
                await self._copy_chunk(first)
                continue
            batch, chunk = self._small_ones_after(first)
            await self._copy_batch(batch)
            if chunk is not None:
                await self._copy_chunk(chunk)

    async def _copy_batch(self, batch: list[HeldTask]) -> None:
        loop = asyncio.get_running_loop()
        for task in batch:
            task.started = True
        started = loop.time()
        try:
            if self._all_small_local(batch):
                lane, execute = self._local_lane, self._copier.execute_small_local
            else:
                lane, execute = self._threads, self._copier.execute_all
            reports = await loop.run_in_executor(lane, execute, batch)
        finally:
            self._copied(batch, len(batch), loop.time() - started)
        for task, report in zip(batch, reports, strict=True):
            self._record(task, report)

    async def _copy_chunk(self, chunk: HeldChunk) -> None:
        """A chunk is one hand-off to one thread: the local lane when both its roots are
        local disks (its objects are small), a slot's thread otherwise."""
        loop = asyncio.get_running_loop()
        chunk.started = True
        chunk.partial_at = time.monotonic() + REPORT_EVERY_S
        local = (
            not chunk.throttled
            and chunk.bandwidth is None
            and self._copier.bandwidth is None  # the agent's own is shared by parallel copies
            and all(
                self._copier.is_local(root.storage) for root in (chunk.source, chunk.destination)
            )
        )
        lane = self._local_lane if local else self._threads
        started = loop.time()
        try:
            await loop.run_in_executor(
                lane, functools.partial(self._copier.execute_chunk, chunk, local=local)
            )
        finally:
            self._copied([chunk], chunk.count, loop.time() - started, per=max(chunk.reached, 1))
        self._ended(chunk.leased.transfer)

    def _copied(self, held: list[Any], objects: int, took: float, *, per: int = 0) -> None:
        """Copies ended: ``objects`` are no longer unfinished, ``took`` seconds for ``per``
        objects (all of them when 0) moves the mean that sizes the leases."""
        samples = per or objects
        each = took / samples
        # As if each object had been timed alone: a chunk of 64 moves the mean as 64 tasks do.
        weight = 1 - (1 - DURATION_SMOOTHING) ** samples
        self._mean_task_s += weight * (each - self._mean_task_s)
        for item in held:
            item.done = True
        self._unfinished -= objects
        self._units -= len(held)
        self._capacity.set()
        self._copies_ended.set()

    def _small_ones_after(self, first: HeldTask) -> tuple[list[HeldTask], HeldChunk | None]:
        """``first``, and when it is small and plenty is queued, the next few: small objects
        are copied several per hand-off to a thread (the hand-off, not the copy, was most of
        the time of a 4 KiB object), without taking work a free slot would have started. A
        chunk taken from the queue meanwhile ends the batch, and is returned beside it."""
        batch = [first]
        share = min(SMALL_BATCH, self._queue.qsize() // self.max_active)
        while _small(batch[-1]) and len(batch) <= share:
            taken = self._queue.get_nowait()
            if isinstance(taken, HeldChunk):
                return batch, taken
            batch.append(taken)
        return batch, None

    def _all_small_local(self, batch: list[HeldTask]) -> bool:
        return self._copier.bandwidth is None and all(
            _small(task)
            and not task.replicas  # a replica may be remote: not for the local lane
            and self._copier.is_local(task.source.storage)
            and self._copier.is_local(task.destination.storage)
            for task in batch
        )

    # --- reporting --------------------------------------------------------------------------
    def _record(self, task: HeldTask, report: TaskReport) -> None:
        self._outbox.add(task, report)
        self._ended(task.leased.transfer)

    def _ended(self, transfer: str) -> None:
        """A task or a chunk of ``transfer`` ended here: report at once when nothing is
        waiting here (the server may be holding work back for a slot, a channel at its
        max_active, that this result frees) or when this agent's share of a transfer is done
        (a small transfer's end must not wait on a big one's batch)."""
        self._held_of[transfer] -= 1
        last_of_its_transfer = self._held_of[transfer] <= 0
        if last_of_its_transfer:
            del self._held_of[transfer]
        if self._outbox.full() or self._queue.empty() or last_of_its_transfer:
            self._flush_now.set()

    async def _report_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), REPORT_EVERY_S)
            self._flush_now.clear()
            await self._flush_all()

    async def _flush_all(self) -> None:
        """Send every result held, chunks' rows so far with them (protocol 2), in bodies of
        at most ``REPORT_BATCH`` objects, each kept until the server accepts it."""
        while (body := self._outbox.next_body(self.session.protocol, time.monotonic())) is not None:
            if await self._resilient(self._outbox.send(self.session, body)) is None:
                return
            for ended in self._outbox.accepted(body, time.monotonic()):
                self._held.pop(ended, None)

    # --- heartbeats -------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        wait = self.session.heartbeat_s
        while True:
            await asyncio.sleep(wait)
            held = [(t.id, t.bytes_done) for t in list(self._held.values())]
            reply: HeartbeatReply | None = await self._resilient(
                self.session.heartbeat(held, self.state_dump())
            )
            wait = self.session.heartbeat_s
            if reply is None:
                continue
            if reply.commands and self.obey is not None:
                await self.obey(reply.commands)
            for task_id in reply.cancel:
                if task_id in self._held:
                    self._held[task_id].canceled = True
            self._share_out(reply)
            if reply.next_change_s is not None:  # a timetable's change is heard on time
                wait = min(wait, reply.next_change_s + TIMETABLE_LAG_S)

    def _share_out(self, reply: HeartbeatReply) -> None:
        """The rates the heartbeat gives, read by each copy at its next block: a task whose
        lease set a bandwidth, or that its lease said is throttled, takes them."""
        for task_id, rate in reply.bandwidth.items():
            held = self._held.get(task_id)
            if held is not None and (held.bandwidth is not None or held.throttled):
                held.bandwidth = rate
        for task_id in reply.unlimited:
            held = self._held.get(task_id)
            if held is not None and held.throttled:
                held.bandwidth = None

    def state_dump(self) -> dict[str, Any]:
        """The transfer daemon's DUMP_STATE, sent with every heartbeat."""
        return {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "version": __version__,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
            "outstanding": len(self._held),
            "max_active": self.max_active,
            "stats": dict(self._outbox.stats),
            "recent_errors": list(self._outbox.recent_errors),
        }
