"""The due loop (FTS CheckDBForTransfers, gCube's poller without its ten-minute sleep).

It sleeps until the earliest ``next_run_at`` and is woken by any submission, so a due transfer
starts at once instead of at the next poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from ferry.domain.events import RunSkipped, TransferChanged
from ferry.domain.states import RunStatus, TransferStatus
from ferry.domain.transfers import Run
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import Store

log = logging.getLogger("ferry.scheduler")

CLAIM_BATCH = 500
MAX_SLEEP_S = 60.0


class DueLoop(Loop):
    name = "due"
    interval = MAX_SLEEP_S

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        *,
        observe_lag: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.observe_lag = observe_lag  # seconds from a run's due time to its start

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.due

    async def run_once(self) -> None:
        while runs := await self.store.claim_due_transfers(self.clock(), CLAIM_BATCH):
            for run in runs:
                if run.status is RunStatus.SKIPPED:
                    self._skipped(run)
                    continue
                log.info("transfer %s: run %d started", run.transfer_id, run.number)
                if self.observe_lag is not None:
                    started = run.started_at or self.clock()
                    self.observe_lag(max(0.0, (started - run.due_at).total_seconds()))
                self.wakeups.events.publish(
                    TransferChanged(transfer=run.transfer_id, status=TransferStatus.ONGOING.value)
                )
            self.wakeups.runs_started()
            if len(runs) < CLAIM_BATCH:
                break

    def _skipped(self, run: Run) -> None:
        """An occurrence of a paused transfer, recorded as a SKIPPED run."""
        log.info("transfer %s: run %d skipped (paused), due at %s", run.transfer_id, run.number,
                 run.due_at.isoformat())  # fmt: skip
        self.wakeups.events.publish(
            RunSkipped(
                transfer=run.transfer_id,
                run=run.number,
                due_at=run.due_at.isoformat(),
                occurrences=run.occurrences,
            )
        )

    async def delay(self) -> float:
        due = await self.store.next_due_at()
        if due is None:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, (due - self.clock()).total_seconds())
