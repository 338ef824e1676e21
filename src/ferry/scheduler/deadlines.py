"""The deadline loop (Globus's task deadline, FTS3's max_time_in_queue): a run still going at
its transfer's deadline is ended there, and a run not started in time is told late."""

from __future__ import annotations

import logging

from ferry.scheduler.loop import Loop

log = logging.getLogger("ferry.scheduler")


class DeadlineLoop(Loop):
    """Ends the runs whose deadline has come (``Store.end_runs_past_deadline``): their objects
    not done are CANCELED with the reason "deadline", and the finalize loop closes them. Once
    a second: a run ends within about a second of its deadline, plus the time its active
    copies take to stop."""

    name = "deadlines"
    singleton = True
    interval = 1.0

    async def run_once(self) -> None:
        now = self.clock()
        for run in await self.store.end_runs_past_deadline(now):
            log.info("transfer %s: run %d ended at its deadline", run.transfer_id, run.number)
            self.wakeups.objects_ended()
        for late in await self.store.note_late_runs(now):
            log.warning(
                "transfer %s: run %d, due at %s, has not started after %d s",
                late.transfer, late.run, late.due_at, late.late_after_s,
            )  # fmt: skip
            self.wakeups.events.publish(late)
            self.wakeups.notices_pending()
