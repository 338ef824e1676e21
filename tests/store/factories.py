"""Builders for store tests: transfers to submit, tasks to plan, agents to register."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer, TaskResult
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


TTL = timedelta(seconds=30)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


async def lease(store, agent_id, limit=100):
    return await store.lease_tasks(agent_id, limit=limit, ttl=TTL)


async def tasks_of(store, transfer_id, run=1):
    """Each object of the run (up to 10,000) with its attempts."""
    found = await store.outcomes(transfer_id, run, after=0, limit=10_000)
    return [(obj, obj.history) for obj in found]


async def states_of(store, transfer_id):
    return [task.state for task, _attempts in await tasks_of(store, transfer_id)]


def done(task, nbytes=10):
    return TaskResult(task.id, task.lease, TaskState.DONE, bytes=nbytes, checksum="adler32:1")


def failed(task, error="boom", *, retryable=False):
    return TaskResult(
        task.id, task.lease, TaskState.FAILED, error_class="e", error=error, retryable=retryable
    )
