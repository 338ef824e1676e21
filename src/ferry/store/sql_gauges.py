"""Counts of what the store holds now, for the monitoring's scrape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, func, select

from ferry.domain.states import TaskState
from ferry.store import tables as t
from ferry.store.abc import StoreGauges
from ferry.store.sql_base import SqlBase


def _grouped(conn: Connection, statement: Select[Any]) -> dict[Any, int]:
    """``{key: count}`` from rows of (key columns…, count); a single key column is the key."""
    counts = {}
    for *key, count in conn.execute(statement):
        counts[key[0] if len(key) == 1 else tuple(key)] = int(count)
    return counts


class GaugesMixin(SqlBase):
    async def gauges(self) -> StoreGauges:
        return await self._reading(self._gauges)

    @staticmethod
    def _gauges(conn: Connection) -> StoreGauges:
        tasks, transfers, agents = t.tasks.c, t.transfers.c, t.agents.c
        # Each through an index: transfers by (status, …), tasks by the index of one state.
        queued = select(tasks.scope, func.count()).where(t.task_state_is(TaskState.QUEUED.value))
        active = select(tasks.source_site, tasks.destination_site, func.count()).where(
            t.task_state_is(TaskState.ACTIVE.value)
        )
        return StoreGauges(
            transfers=_grouped(
                conn, select(transfers.status, func.count()).group_by(transfers.status)
            ),
            queued=_grouped(conn, queued.group_by(tasks.scope)),
            active=_grouped(conn, active.group_by(tasks.source_site, tasks.destination_site)),
            agents=_grouped(conn, select(agents.state, func.count()).group_by(agents.state)),
        )
