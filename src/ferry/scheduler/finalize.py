"""The finalize loop (FTS Finalize): close finished runs and set their transfer's status."""

from __future__ import annotations

import asyncio
import logging

from ferry.domain.events import RunFinished, TransferChanged
from ferry.domain.transfers import Run
from ferry.scheduler.guard import StorageLoop
from ferry.scheduler.leftovers import remove_leftovers
from ferry.scheduler.prune import Pruner

log = logging.getLogger("ferry.scheduler")


class FinalizeLoop(StorageLoop):
    """Close runs whose objects have all ended, set their transfer's status, announce it, and
    remove the temporary files its lost attempts left (``leftovers``)."""

    name = "finalize"
    singleton = True
    interval = 2.0

    @property
    def wake(self) -> asyncio.Event:
        return self.wakeups.finalize

    async def run_once(self) -> None:
        await Pruner(self).prune_ready()  # a --delete-extra run's deletions come before its end
        finished = await self.store.finish_runs(self.clock())
        if finished:
            self.wakeups.transfers_may_be_due()  # a periodic one may be due again sooner
            self.wakeups.notices_pending()
        for run in finished:
            await self._announce(run)
            removed = await remove_leftovers(self.store, run.transfer_id, run.number, self._open)
            if removed:
                log.info(
                    "transfer %s: run %d: temporary files of lost attempts removed: %d",
                    run.transfer_id,
                    run.number,
                    removed,
                )
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

    async def _announce(self, run: Run) -> None:
        c = run.counts
        events = self.wakeups.events
        events.publish(
            RunFinished(
                transfer=run.transfer_id,
                run=run.number,
                status=run.status.value,
                objects={
                    "total": c.total,
                    "done": c.done,
                    "failed": c.failed,
                    "skipped": c.skipped,
                    "canceled": c.canceled,
                    "filtered": c.filtered,
                    "deleted": c.deleted,
                },
                bytes=c.bytes,
                error=run.error,
            )
        )
        if events.wants(TransferChanged.kind):
            transfer = await self.store.get_transfer(run.transfer_id)
            events.publish(
                TransferChanged(
                    transfer=transfer.id, status=transfer.status.value, error=transfer.error
                )
            )
