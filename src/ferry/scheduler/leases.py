"""Leases that lapse and tasks that wait: FTS's CheckState and Retry actions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import InterfaceError, OperationalError

from ferry.errors import StoreUnavailable
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import Store

log = logging.getLogger("ferry.scheduler")

DATABASE_AWAY = (StoreUnavailable, OperationalError, InterfaceError)


class LeaseReaper(Loop):
    """Return tasks whose lease expired to QUEUED (agents that vanished without a word).

    A lease is renewed by its agent's heartbeats, which the database records: while the
    database is away, every lease lapses though no agent is gone. So once a pass has found it
    away, the reaper waits for it to take a write again and then for ``grace`` (the lease TTL:
    every live agent has sent a heartbeat by then) before it reaps again; without that, each
    object in flight when the database went away was requeued and copied a second time. A
    server that starts does the same: while no server ran, no heartbeat could be recorded."""

    name = "lease-reaper"
    interval = 2.0

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        *,
        grace: timedelta = timedelta(seconds=30),
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.grace = grace
        # A pass found the database away and it has not been seen back (or the server starts).
        self._away = True
        self._quiet_until: datetime | None = None

    async def run_once(self) -> None:
        now = self.clock()
        try:
            if self._away:
                await self.store.check_writable()
                why = "the server starts" if self._quiet_until is None else "the database is back"
                self._away, self._quiet_until = False, now + self.grace
                log.info(
                    "%s: no lease is reaped for %.0f s, while agents renew them",
                    why,
                    self.grace.total_seconds(),
                )
                return
            if self._quiet_until is not None and now < self._quiet_until:
                return
            expired = await self.store.reap_expired_leases(now)
        except DATABASE_AWAY:
            self._away = True
            raise
        if expired:
            log.info("requeued %d tasks from expired leases", expired)
            self.wakeups.work_queued()
            self.wakeups.objects_ended()


class RetryLoop(Loop):
    """Move WAITING tasks whose backoff elapsed back to QUEUED."""

    name = "retry"
    interval = 1.0

    async def run_once(self) -> None:
        if ready := await self.store.requeue_waiting(self.clock()):
            log.info("%d tasks ready to retry", ready)
            self.wakeups.work_queued()
