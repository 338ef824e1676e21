"""The agent's work loop: keep a queue of leased tasks full, copy with a pool of threads,
report results in batches (every ~200 ms or every few hundred), heartbeat, obey cancels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx

from ferry import __version__
from ferry.agent.held import HeldTask
from ferry.agent.local_queue import FairQueue
from ferry.agent.reports import send_reports
from ferry.daemon.logs import REDACTOR
from ferry.domain.chunks import is_small
from ferry.domain.transfers import clip_error
from ferry.engine.copy import CopyRequest, CopyState, copy_object
from ferry.engine.storages import StorageFS, is_local_url, open_storage, remembered_folders
from ferry.errors import ApiError, TransferCanceled, TransferError
from ferry.protocol import HeartbeatReply, LeaseReply, ReportedState, TaskReport

log = logging.getLogger("ferry.agent")

REPORT_EVERY_S = 0.2
REPORT_BATCH = 500
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
RECENT_ERRORS = 10
SMALL_BATCH = 16
# Small objects between local disks are copied by this many threads, not by every slot: their
# copies are short system calls between stretches of Python, and eight threads taking turns at
# the interpreter lock spent more time handing it over (a hundred futex calls per object) than
# copying. A remote or large object waits on the network or the disk, and gets a slot's thread.
LOCAL_LANE_THREADS = 1


# How a copy that ended, ended, as reported.
_REPORTED = {CopyState.DONE: ReportedState.DONE, CopyState.SKIPPED: ReportedState.SKIPPED}


def _small(task: HeldTask) -> bool:
    """Whether the copy is short work for the CPU, to batch or lane with others."""
    return is_small(task.leased.size, unzip=task.leased.unzip, bandwidth=task.bandwidth)


class FatalSessionError(Exception):
    """The server refuses this agent (token revoked, agent replaced): stop and let the
    supervisor start a new one."""


class AgentRunner:
    def __init__(
        self,
        session: Any,
        *,
        max_active: int,
        grace: float = 10.0,
        idle_timeout: float = 0.0,
    ) -> None:
        self.session = session
        self.max_active = max_active
        self.grace = grace  # set to 0 before stopping for an immediate stop (SIGQUIT)
        self.idle_timeout = idle_timeout
        self.idle_exit = False
        self._last_busy = time.monotonic()
        self._recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self._held: dict[int, HeldTask] = {}
        self._held_of: Counter[str] = Counter()  # unreported tasks per transfer
        self._queue: FairQueue[HeldTask] = FairQueue()
        self._results: list[TaskReport] = []
        self._flush_now = asyncio.Event()
        self._capacity = asyncio.Event()
        self._copies_ended = asyncio.Event()  # set whenever a batch of copies ends
        self._unfinished = 0  # leased and not yet copied: queued or running
        self._mean_task_s = 1.0  # moving average of one copy's wall time
        # Each storage's URL, options and protected paths, as the last lease sent them.
        self._storage_urls: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {}
        self._storages: dict[str, StorageFS] = {}
        self._storages_lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=max_active, thread_name_prefix="copy")
        self._local_lane = ThreadPoolExecutor(
            max_workers=LOCAL_LANE_THREADS, thread_name_prefix="copy-local"
        )
        self._stats: Counter[str] = Counter()
        self._started_at = time.monotonic()
        self.fatal: BaseException | None = None
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
            if self._held or self._results:
                self._last_busy = time.monotonic()
            elif time.monotonic() - self._last_busy > self.idle_timeout:
                log.info("nothing to do for %.0f s: stopping", self.idle_timeout)
                self.idle_exit = True
                stop.set()
                return

    async def _guard(self, coroutine: Any, stop: asyncio.Event) -> None:
        try:
            await coroutine
        except FatalSessionError as exc:
            log.error("server refused this agent: %s", exc)
            self.fatal = exc
            stop.set()
        except Exception as exc:  # a loop that dies must not leave the agent half alive
            log.exception("agent loop crashed; stopping")
            self.fatal = exc
            stop.set()

    async def _drain(self, workers: list[asyncio.Task[None]], grace: float) -> None:
        """Give back what has not started; let active copies finish within ``grace``,
        then stop them."""
        while not self._queue.empty():
            task = self._queue.get_nowait()
            task.done = True
            self._unfinished -= 1
            self._record(task, task.ended(ReportedState.RELEASED, started=False))
        active = [t for t in self._held.values() if t.started and not t.done]
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

    async def _all_done(self, tasks: list[HeldTask]) -> None:
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
            if room < max(1, ahead // 2) and self._unfinished > 0:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            reply: LeaseReply | None = await self._resilient(self.session.lease(room, LEASE_WAIT_S))
            if reply is None:
                continue
            for name, access in reply.storages.items():
                self._storage_urls[name] = (access.url, access.options, tuple(access.protected))
            for leased in reply.tasks:
                self._hold(HeldTask.from_lease(leased), reply.scopes.get(leased.scope, 1))

    def _hold(self, task: HeldTask, weight: int) -> None:
        leased = task.leased
        self._held[task.id] = task
        self._held_of[leased.transfer] += 1
        self._unfinished += 1
        self._queue.put_nowait(task, scope=leased.scope, priority=leased.priority, weight=weight)

    async def _resilient(self, call: Any) -> Any:
        """Await ``call``; on a network error or a server error, wait and give ``None``."""
        try:
            return await call
        except ApiError as exc:
            if exc.status in (401, 403):
                raise FatalSessionError(str(exc)) from exc
            log.warning("server answered %d: %s", exc.status, exc)
        except httpx.TransportError as exc:
            log.warning("server unreachable: %s", exc)
        await asyncio.sleep(RETRY_DELAY_S)
        return None

    # --- copying ----------------------------------------------------------------------------
    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = self._small_ones_after(await self._queue.get())
            for task in batch:
                task.started = True
            started = loop.time()
            try:
                if self._all_small_local(batch):
                    reports = await loop.run_in_executor(
                        self._local_lane, self._execute_small_local, batch
                    )
                else:
                    reports = await loop.run_in_executor(self._threads, self._execute_all, batch)
            finally:
                each = (loop.time() - started) / len(batch)
                self._mean_task_s += DURATION_SMOOTHING * (each - self._mean_task_s)
                for task in batch:
                    task.done = True
                self._unfinished -= len(batch)
                self._capacity.set()
                self._copies_ended.set()
            for task, report in zip(batch, reports, strict=True):
                self._record(task, report)

    def _small_ones_after(self, first: HeldTask) -> list[HeldTask]:
        """``first``, and when it is small and plenty is queued, the next few: small objects
        are copied several per hand-off to a thread (the hand-off, not the copy, was most of
        the time of a 4 KiB object), without taking work a free slot would have started."""
        batch = [first]
        share = min(SMALL_BATCH, self._queue.qsize() // self.max_active)
        while _small(batch[-1]) and len(batch) <= share:
            batch.append(self._queue.get_nowait())
        return batch

    def _all_small_local(self, batch: list[HeldTask]) -> bool:
        return all(
            _small(task)
            and self._local(task.source.storage)
            and self._local(task.destination.storage)
            for task in batch
        )

    def _local(self, storage: str) -> bool:
        """Whether the storage is a local disk, told from its URL (opening it to ask could
        connect to a remote host from the event loop)."""
        return is_local_url(self._storage_urls[storage][0])

    def _execute_all(self, batch: list[HeldTask]) -> list[TaskReport]:
        return [self._execute(task) for task in batch]

    def _execute_small_local(self, batch: list[HeldTask]) -> list[TaskReport]:
        """A batch of small local copies, which take a fraction of a millisecond each: the
        folders on their paths are walked down once for the batch, and held open until it
        ends. (A batch with a remote copy in it may take seconds: its copies walk down each
        time.)"""
        with remembered_folders():
            return [self._execute(task) for task in batch]

    def _execute(self, task: HeldTask) -> TaskReport:
        if task.canceled:  # no attempt was made: the server counts none
            if task.shutting_down:  # waited behind others of its batch: never started
                return task.ended(ReportedState.RELEASED, started=False)
            error = "canceled before it started"
            return task.ended(ReportedState.CANCELED, error=error, started=False)
        try:
            request = CopyRequest(
                source=self._storage(task.source.storage),
                source_path=task.source.path,
                destination=self._storage(task.destination.storage),
                destination_path=task.destination.path,
                checksum=task.leased.checksum,
                overwrite=task.leased.overwrite,
                tag=str(task.id),
                attempt=task.leased.attempt,
                unzip=task.leased.unzip,
                unzip_max_bytes=task.leased.unzip_max_bytes,
                bandwidth=task.bandwidth,
                bandwidth_now=task.current_bandwidth,
                folder=task.leased.folder,
            )
            outcome = copy_object(request, progress=task.add_bytes, should_stop=task.should_stop)
        except TransferCanceled as exc:
            moved = task.bytes_done  # what the attempt moved before it stopped
            if task.shutting_down:  # not a user's cancel: the object still has to move
                why = "the agent stopped before it finished"
                return task.ended(ReportedState.RELEASED, error=why, bytes=moved)
            return task.ended(
                ReportedState.CANCELED, error=str(exc), error_class=exc.error_class, bytes=moved
            )
        except TransferError as exc:
            if exc.retryable:
                self._reopen_later(task)
            return task.ended(
                ReportedState.FAILED,
                error=exc.message,
                error_class=exc.error_class,
                retryable=exc.retryable,
            )
        except Exception as exc:  # a bug or an unmapped backend error: keep the agent alive
            log.exception("task %d: unexpected error", task.id)
            self._reopen_later(task)
            error = f"{type(exc).__name__}: {exc}"
            return task.ended(
                ReportedState.FAILED, error=error, error_class="internal", retryable=True
            )
        return task.ended(
            _REPORTED[outcome.state],
            bytes=outcome.bytes,
            checksum=outcome.checksum,
            error=outcome.reason,  # why it was SKIPPED
        )

    def _reopen_later(self, task: HeldTask) -> None:
        """After a transient failure, the task's remote storages are opened anew by the next
        attempt: a filesystem whose connection died (an SFTP server restarted) kept failing
        every attempt, on every agent, for as long as the agents lived."""
        with self._storages_lock:
            for name in (task.source.storage, task.destination.storage):
                if name in self._storage_urls and not self._local(name):
                    self._storages.pop(name, None)

    def _storage(self, name: str) -> StorageFS:
        with self._storages_lock:
            if name not in self._storages:
                url, options, protected = self._storage_urls[name]
                opened = open_storage(name, url, options, protected)
                for secret in opened.secrets:  # and out of this agent's log lines
                    REDACTOR.add(secret)
                self._storages[name] = opened
            return self._storages[name]

    # --- reporting --------------------------------------------------------------------------
    def _record(self, task: HeldTask, report: TaskReport) -> None:
        if report.error:  # a path of thousands of characters makes a message as long
            report.error = clip_error(REDACTOR.redact(report.error))
        self._stats[report.state] += 1
        if report.state is ReportedState.FAILED:
            self._recent_errors.append(
                {
                    "task": task.id,
                    "source": str(task.source),
                    "error": report.error,
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        self._stats["bytes"] += report.bytes
        self._results.append(report)
        transfer = task.leased.transfer
        self._held_of[transfer] -= 1
        last_of_its_transfer = self._held_of[transfer] <= 0
        if last_of_its_transfer:
            del self._held_of[transfer]
        # Report at once when nothing is waiting here (the server may be holding work back for
        # a slot, a channel at its max_active, that this result frees) or when this agent's
        # share of a transfer is done (a small transfer's end must not wait on a big one's batch).
        if len(self._results) >= REPORT_BATCH or self._queue.empty() or last_of_its_transfer:
            self._flush_now.set()

    async def _report_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), REPORT_EVERY_S)
            self._flush_now.clear()
            await self._flush_all()

    async def _flush_all(self) -> None:
        while self._results:
            batch = self._results[:REPORT_BATCH]
            if await self._resilient(self._sent(batch)) is None:
                return
            del self._results[: len(batch)]
            for item in batch:
                self._held.pop(item.task, None)

    async def _sent(self, batch: list[TaskReport]) -> bool:
        await send_reports(self.session, batch)
        return True

    # --- heartbeats -------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.session.heartbeat_s)
            held = [(t.id, t.bytes_done) for t in list(self._held.values())]
            reply: HeartbeatReply | None = await self._resilient(
                self.session.heartbeat(held, self.state_dump())
            )
            cancel, shares = (reply.cancel, reply.bandwidth) if reply else ([], {})
            for task_id in cancel:
                if task_id in self._held:
                    self._held[task_id].canceled = True
            for task_id, rate in shares.items():  # read by its copy at its next block
                if task_id in self._held and self._held[task_id].bandwidth is not None:
                    self._held[task_id].bandwidth = rate

    def state_dump(self) -> dict[str, Any]:
        """The transfer daemon's DUMP_STATE, sent with every heartbeat."""
        return {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "version": __version__,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
            "outstanding": len(self._held),
            "max_active": self.max_active,
            "stats": dict(self._stats),
            "recent_errors": list(self._recent_errors),
        }
