"""Finalize hooks in SQL: an outbox of run summaries, written in the transaction that closes
the run (so none is lost or sent for a run that did not finish) and drained by the notify loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ferry.domain.transfers import Run
from ferry.store import tables as t
from ferry.store.abc import Notification
from ferry.store.sql_base import SqlBase, all_rows

PENDING, DELIVERED, GAVE_UP = "PENDING", "DELIVERED", "FAILED"


def run_summary(run: Run, scope: str) -> dict[str, Any]:
    """What a hook receives: the run's outcome, counts, bytes and times."""
    c = run.counts
    return {
        "event": "run.finished",
        "transfer": run.transfer_id,
        "scope": scope,
        "run": run.number,
        "status": run.status.value,
        "objects": {
            "total": c.total,
            "done": c.done,
            "failed": c.failed,
            "skipped": c.skipped,
            "canceled": c.canceled,
            "filtered": c.filtered,
            "deleted": c.deleted,  # files --delete-extra deleted (not in total)
        },
        "bytes": c.bytes,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
    }


def enqueue_notification(
    conn: Connection,
    url: str,
    transfer_id: str,
    run: int,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """A post of ``payload`` to ``url`` for run ``run`` of the transfer, due now (the notify
    loop delivers it, with retries)."""
    conn.execute(
        insert(t.notifications).values(
            transfer_id=transfer_id,
            run=run,
            url=url,
            payload=payload,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


class HooksMixin(SqlBase):
    def _enqueue_notification(
        self, conn: Connection, url: str, run: Run, scope: str, now: datetime
    ) -> None:
        payload = run_summary(run, scope)
        enqueue_notification(conn, url, run.transfer_id, run.number, payload, now)

    async def due_notifications(self, now: datetime, limit: int) -> list[Notification]:
        n = t.notifications.c
        rows = await self._reading(
            all_rows,
            select(t.notifications)
            .where((n.state == PENDING) & (n.next_attempt_at <= now))
            .order_by(n.next_attempt_at, n.id)
            .limit(limit),
        )
        return [
            Notification(r.id, r.transfer_id, r.run, r.url, dict(r.payload), r.attempts)
            for r in rows
        ]

    async def record_notification(
        self,
        notification_id: int,
        *,
        delivered: bool,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        now = self.clock()
        values: dict[str, Any] = {
            "attempts": t.notifications.c.attempts + 1,
            "last_error": error,
        }
        if delivered:
            values.update(state=DELIVERED, delivered_at=now)
        elif retry_at is None:
            values.update(state=GAVE_UP)
        else:
            values.update(next_attempt_at=retry_at)
        async with self._tx() as conn:
            await conn.execute(
                update(t.notifications)
                .where(
                    (t.notifications.c.id == notification_id) & (t.notifications.c.state == PENDING)
                )
                .values(**values)
            )
