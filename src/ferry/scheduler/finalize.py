"""The finalize loop (FTS Finalize): close finished runs and set their transfer's status."""

from __future__ import annotations

import asyncio
import logging

from ferry.scheduler.loop import Loop

log = logging.getLogger("ferry.scheduler")


class FinalizeLoop(Loop):
    name = "finalize"
    interval = 2.0

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.finalize

    async def run_once(self) -> None:
        finished = await self.store.finish_runs(self.clock())
        if finished:
            self.wakeups.due.set()  # a periodic transfer may be due again sooner than it sleeps
        for run in finished:
            c = run.counts
            log.info(
                "transfer %s: run %d %s (%d done, %d skipped, %d failed, %d canceled, %d bytes)",
                run.transfer_id,
                run.number,
                run.status,
                c.done,
                c.skipped,
                c.failed,
                c.canceled,
                c.bytes,
            )
