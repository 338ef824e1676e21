"""The due loop (FTS CheckDBForTransfers, gCube's poller without its ten-minute sleep).

It sleeps until the earliest ``next_run_at`` and is woken by any submission, so a due transfer
starts at once instead of at the next poll."""

from __future__ import annotations

import asyncio
import logging

from ferry.domain.events import TransferChanged
from ferry.domain.states import TransferStatus
from ferry.scheduler.loop import Loop

log = logging.getLogger("ferry.scheduler")

CLAIM_BATCH = 500
MAX_SLEEP_S = 60.0


class DueLoop(Loop):
    name = "due"
    interval = MAX_SLEEP_S

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.due

    async def run_once(self) -> None:
        while runs := await self.store.claim_due_transfers(self.clock(), CLAIM_BATCH):
            for run in runs:
                log.info("transfer %s: run %d started", run.transfer_id, run.number)
                self.wakeups.events.publish(
                    TransferChanged(transfer=run.transfer_id, status=TransferStatus.ONGOING.value)
                )
            self.wakeups.expand.set()
            if len(runs) < CLAIM_BATCH:
                break

    async def delay(self) -> float:
        due = await self.store.next_due_at()
        if due is None:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, (due - self.clock()).total_seconds())
