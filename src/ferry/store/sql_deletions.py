"""The deletion step of ``--delete-extra`` runs in SQL: which runs wait on it, and what it did
(DELETED objects numbered into the run, its counts, its state and note), in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from ferry.domain.states import RunStatus
from ferry.domain.sync import DeletionState
from ferry.domain.transfers import PlannedTask, Run, Transfer
from ferry.store import tables as t
from ferry.store.sql_base import all_rows
from ferry.store.sql_bulk import execute_many
from ferry.store.sql_insert import NEW_TASK_INSERTS, InsertMixin, task_rows
from ferry.store.sql_rows import run_from_row, transfer_from_row


class DeletionsMixin(InsertMixin):
    async def runs_to_prune(self, limit: int) -> list[tuple[Transfer, Run]]:
        r = t.runs.c
        waiting = (
            select(t.runs)
            .where(
                (r.status == RunStatus.ONGOING.value)
                & r.expanded
                & (r.total == r.done + r.failed + r.skipped + r.canceled)
                & (r.deletion == DeletionState.PENDING.value)
            )
            .limit(limit)
        )

        def read(conn: Connection) -> list[tuple[Any, Run]]:
            runs = [run_from_row(row) for row in all_rows(conn, waiting)]
            ids = {run.transfer_id for run in runs}
            if not ids:
                return []
            rows = {
                row.id: row
                for row in all_rows(conn, select(t.transfers).where(t.transfers.c.id.in_(ids)))
            }
            return [(rows[run.transfer_id], run) for run in runs]

        found = await self._reading(read)
        return [(transfer_from_row(row, self._specs), run) for row, run in found]

    async def record_deletion(
        self,
        transfer: Transfer,
        run: int,
        state: DeletionState,
        note: str,
        deleted: Sequence[PlannedTask] = (),
    ) -> None:
        await self._write(self._record_deletion, transfer, run, state, note, deleted)

    def _record_deletion(
        self,
        conn: Connection,
        transfer: Transfer,
        run: int,
        state: DeletionState,
        note: str,
        deleted: Sequence[PlannedTask],
    ) -> None:
        r = t.runs.c
        this_run = (r.transfer_id == transfer.id) & (r.number == run)
        ended = conn.execute(
            update(t.runs)
            .where(this_run & (r.deletion == DeletionState.PENDING.value))
            .values(deletion=state.value, deletion_note=note)
        )
        if ended.rowcount != 1 or not deleted:
            return  # recorded already (or nothing deleted): the first record stands
        base = self._next_object(conn, transfer.id, run)
        numbers = None if base is None else range(base, base + len(deleted))
        sites = self._sites_of(conn, transfer.spec.storages())
        options = transfer.spec.options
        rows = task_rows(transfer.id, transfer.scope, options, run, deleted, sites, numbers)
        # A file copied by this run whose source went before this step is an object already.
        execute_many(conn, NEW_TASK_INSERTS[conn.dialect.name], rows)
        values: dict[str, Any] = {
            "deleted": r.deleted + len(deleted),
            "deleted_bytes": r.deleted_bytes + sum(p.size or 0 for p in deleted),
        }
        if base is not None:
            values["next_object"] = r.next_object + len(deleted)
        conn.execute(update(t.runs).where(this_run).values(**values))
