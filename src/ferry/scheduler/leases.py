"""Leases that lapse and tasks that wait: FTS's CheckState and Retry actions."""

from __future__ import annotations

import logging

from ferry.scheduler.loop import Loop

log = logging.getLogger("ferry.scheduler")


class LeaseReaper(Loop):
    """Return tasks whose lease expired to QUEUED (agents that vanished without a word)."""

    name = "lease-reaper"
    interval = 2.0

    async def run_once(self) -> None:
        if expired := await self.store.reap_expired_leases(self.clock()):
            log.info("requeued %d tasks from expired leases", expired)
            self.wakeups.tasks_available.fire()
            self.wakeups.finalize.set()


class RetryLoop(Loop):
    """Move WAITING tasks whose backoff elapsed back to QUEUED."""

    name = "retry"
    interval = 1.0

    async def run_once(self) -> None:
        if ready := await self.store.requeue_waiting(self.clock()):
            log.info("%d tasks ready to retry", ready)
            self.wakeups.tasks_available.fire()
