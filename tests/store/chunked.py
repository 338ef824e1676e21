"""Builders for the store tests of chunks: runs of carriers made through ``add_tasks``,
agents that take chunks, and their reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from ferry.api.protocol import PROTOCOL, ChunkReport, ReportedState
from ferry.domain.chunks import PlannedChunk
from ferry.domain.locations import parse_location
from ferry.domain.transfers import PlannedTask, Transfer, TransferKind, TransferOptions
from ferry.store import tables as t
from ferry.store.abc import LeasedTask
from ferry.store.sql import SqlStore

from .factories import new_transfer

TTL = timedelta(seconds=30)
SIZE = 10


def chunk(first: int, count: int, prefix: str = "c") -> PlannedChunk:
    """``count`` objects of ``SIZE`` bytes from ``src:in`` to ``dst:out``, placed at ``first``."""
    objects = tuple((f"{prefix}{first + i}", SIZE) for i in range(count))
    return PlannedChunk(parse_location("src:in"), parse_location("dst:out"), first, objects)


def single(name: str, size: int = SIZE) -> PlannedTask:
    return PlannedTask(parse_location(f"src:in/{name}"), parse_location(f"dst:out/{name}"), size)


async def started(
    store: SqlStore,
    clock: Any,
    *pages: list[PlannedTask | PlannedChunk],
    scope: str = "default",
    options: TransferOptions | None = None,
) -> Transfer:
    """A tree transfer whose run was opened and expanded with ``pages``, one ``add_tasks``
    each."""
    new = new_transfer(
        sources=("src:in",),
        destination="dst:out",
        kind=TransferKind.TREE,
        next_run_at=clock.now,
        options=options,
    )
    new = replace(new, scope=scope)
    transfer, _created = await store.create_transfer(new)
    await store.claim_due_transfers(clock.now, 100)
    transfer = await store.get_transfer(transfer.id)
    for page in pages:
        await store.add_tasks(transfer, 1, page)
    await store.mark_expanded(transfer.id, 1)
    return transfer


async def chunk_agent(store: SqlStore, name: str, *, protocol: int = PROTOCOL) -> str:
    secret = await store.issue_agent_secret(name, timedelta(minutes=5))
    agent, _token = await store.register_agent(
        secret=secret, principal=None, name=name, host="host", capabilities={"protocol": protocol}
    )
    return agent.id


def report(
    task: LeasedTask,
    rows: list[tuple[Any, ...]],
    *,
    ended: bool = False,
    rest: ReportedState | None = None,
) -> ChunkReport:
    """A report of ``task``'s objects: each row ``(offset, state)`` or a whole result row."""
    results: list[Any] = [
        row if len(row) == 7 else (row[0], row[1], SIZE, None, None, None, False) for row in rows
    ]
    return ChunkReport(task=task.id, lease=task.lease, results=results, ended=ended, rest=rest)


def done(offsets: Any) -> list[tuple[Any, ...]]:
    return [(i, ReportedState.DONE) for i in offsets]


def failed(offset: int, error: str, *, retryable: bool) -> tuple[Any, ...]:
    return (offset, ReportedState.FAILED, 0, None, "storage", error, retryable)


async def run_row(store: SqlStore, transfer_id: str) -> Any:
    def read(conn: Any) -> Any:
        return conn.execute(select(t.runs).where(t.runs.c.transfer_id == transfer_id)).one()

    return await store._reading(read)


async def task_rows(store: SqlStore, transfer_id: str) -> list[Any]:
    def read(conn: Any) -> list[Any]:
        c = t.tasks.c
        query = select(t.tasks).where(c.transfer_id == transfer_id).order_by(c.id)
        return list(conn.execute(query).all())

    return await store._reading(read)


async def outcome_rows(store: SqlStore, transfer_id: str) -> list[Any]:
    def read(conn: Any) -> list[Any]:
        o = t.outcomes.c
        query = select(t.outcomes).where(o.transfer_id == transfer_id).order_by(o.object, o.attempt)
        return list(conn.execute(query).all())

    return await store._reading(read)
