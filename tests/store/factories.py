"""Builders for store tests: transfers to submit, tasks to plan, agents to register."""

from __future__ import annotations

from datetime import datetime, timedelta

from ferry.domain.locations import parse_location
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer
from ferry.store.sql import SqlStore


def new_transfer(
    *,
    sources: tuple[str, ...] = ("src:in/a.bin",),
    destination: str = "dst:out",
    options: TransferOptions | None = None,
    submission_id: str | None = None,
    next_run_at: datetime,
    kind: TransferKind = TransferKind.FILE,
) -> NewTransfer:
    spec = TransferSpec(
        kind,
        tuple(parse_location(s) for s in sources),
        parse_location(destination),
        options or TransferOptions(),
    )
    return NewTransfer("default", "admin", spec, {}, next_run_at, submission_id)


def planned(count: int, prefix: str = "f") -> list[PlannedTask]:
    return [
        PlannedTask(parse_location(f"src:{prefix}{i}"), parse_location(f"dst:{prefix}{i}"), 10)
        for i in range(count)
    ]


async def register(store: SqlStore, name: str) -> str:
    secret = await store.issue_agent_secret(name, timedelta(minutes=5))
    agent, _token = await store.register_agent(
        secret=secret, principal=None, name=name, host="host", capabilities={}
    )
    return agent.id
