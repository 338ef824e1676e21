"""The SQL store on a real SQLite file: the contract of ``ferry.store.abc.Store``."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from ferry.domain.locations import parse_location
from ferry.domain.states import AgentState, RunStatus, TaskState, TransferStatus
from ferry.domain.transfers import PlannedTask, Role, Scope, Storage, TransferOptions
from ferry.errors import (
    AlreadyFinished,
    ConfigError,
    Conflict,
    InvalidRequest,
    NotFound,
    SecretRejected,
    StorageNotFound,
    TransferNotFound,
    Unauthenticated,
)
from ferry.store import tables
from ferry.store.abc import TaskResult
from ferry.store.sql import SqlStore
from ferry.store.sql_base import _sync_url
from ferry.store.sql_tasks import RETRY_CAP

from .factories import new_transfer, planned, register

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


# --- the database and security ------------------------------------------------------------------


async def test_sqlite_database_is_in_wal_mode(tmp_path):
    """SQLite only (a pragma of the file), so not on the store fixture of both backends."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "wal.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_connection_dropped_mid_transaction_leaves_the_database_writable(tmp_path):
    """A task cancelled between a statement and the reading of its rows (a request whose
    client went away) gets its connection invalidated and closed while that statement is
    still open. sqlite3 then keeps the connection, its transaction and its write lock, alive
    until the statement's cursor is freed: every later write failed with "database is
    locked". The store's connections roll back as they close."""
    path = tmp_path / "drop.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.open()
    unread = None
    try:
        await store.put_storage(Storage("a", "file:///a"))
        await store.put_storage(Storage("b", "file:///b"))
        async with store.engine.connect() as conn:
            await conn.exec_driver_sql("UPDATE storages SET url = 'file:///changed'")
            raw = await conn.get_raw_connection()
            unread = await raw.driver_connection.execute("SELECT name FROM storages")
            await conn.invalidate()
        with sqlite3.connect(path, timeout=0.5, isolation_level=None) as other:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" while the lock is held
            other.execute("ROLLBACK")
        assert [s.url for s in await store.list_storages()] == ["file:///a", "file:///b"]
        await store.put_storage(Storage("c", "file:///c"))
    finally:
        del unread  # the open statement's cursor: freed, it ends a lock left held
        await store.close()


async def test_an_in_memory_sqlite_database_is_refused_with_the_reason():
    """The store's hot transactions run on their own connection: each would see its own,
    empty, in-memory database."""
    store = SqlStore("sqlite+aiosqlite://")
    with pytest.raises(ConfigError, match="in-memory SQLite database cannot be shared"):
        await store.open()


@pytest.mark.parametrize(
    ("url", "synchronous"),
    [
        ("sqlite+aiosqlite:////data/ferry.db", "sqlite+pysqlite:////data/ferry.db"),
        ("postgresql+psycopg://f:pw@db/ferry", "postgresql+psycopg://f:pw@db/ferry"),
        ("postgresql+asyncpg://f:pw@db/ferry", "postgresql+psycopg://f:pw@db/ferry"),
    ],
)
def test_the_writer_thread_reaches_the_same_database_synchronously(url, synchronous):
    assert _sync_url(url) == synchronous


async def test_a_write_whose_caller_is_cancelled_is_rolled_back_and_holds_the_writer_till_it_ends(
    store,
):
    """A hot transaction runs whole on the writer thread. Its caller cancelled meanwhile (a
    request whose client went away): the transaction is rolled back, not committed behind the
    caller's back, and no other write starts before it has ended."""
    started, release = threading.Event(), threading.Event()

    def work(conn):
        conn.execute(insert(tables.scopes).values(name="abandoned", weight=1, created_at=NOW))
        started.set()
        release.wait(10)

    write = asyncio.ensure_future(store._write(work))
    await asyncio.to_thread(started.wait, 10)
    write.cancel()
    after = asyncio.ensure_future(store.put_scope(Scope("after", 2)))
    await asyncio.sleep(0)  # one turn of the loop: the cancellation reaches the write
    assert store._write_lock.locked()
    assert not write.done()
    assert not after.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await write
    await after
    names = {scope.name for scope in await store.list_scopes()}
    assert "after" in names
    assert "abandoned" not in names


async def test_bootstrap_returns_a_token_only_the_first_time(fresh_store):
    token = await fresh_store.bootstrap()
    assert token
    assert await fresh_store.bootstrap() is None


async def test_bootstrap_token_authenticates_the_administrator(fresh_store):
    principal = await fresh_store.authenticate(await fresh_store.bootstrap())
    assert principal.role is Role.ADMINISTRATOR
    assert principal.agent_id is None


async def test_unknown_token_is_refused(store):
    with pytest.raises(Unauthenticated):
        await store.authenticate("not-a-token")


# --- storages -----------------------------------------------------------------------------------


async def test_put_then_get_storage(store):
    storage = Storage("data", "file:///srv/data", site="cern", options={"auto_mkdir": True})
    await store.put_storage(storage)
    assert await store.get_storage("data") == storage


async def test_put_storage_replaces_the_same_name(store):
    await store.put_storage(Storage("data", "file:///a"))
    await store.put_storage(Storage("data", "file:///b", site="x"))
    assert await store.list_storages() == [Storage("data", "file:///b", site="x")]


async def test_storages_are_listed_by_name(store):
    for name in ("b", "c", "a"):
        await store.put_storage(Storage(name, f"memory://{name}"))
    assert [s.name for s in await store.list_storages()] == ["a", "b", "c"]


async def test_unknown_storage_is_not_found(store):
    with pytest.raises(StorageNotFound, match="'nope'"):
        await store.get_storage("nope")


# --- transfers ----------------------------------------------------------------------------------


async def test_new_transfer_waits_in_standby(store, submit, clock):
    transfer = await submit()
    assert transfer.status is TransferStatus.STANDBY
    assert (transfer.runs, transfer.next_run_at, transfer.error) == (0, clock.now, None)
    assert await store.get_transfer(transfer.id) == transfer


async def test_unknown_transfer_is_not_found(store):
    with pytest.raises(TransferNotFound):
        await store.get_transfer("00000000-0000-0000-0000-000000000000")


async def test_transfers_are_listed_newest_first_in_pages(store, submit, clock):
    ids = []
    for _ in range(5):
        ids.append((await submit()).id)
        clock.advance(seconds=1)
    seen, cursor, sizes = [], None, []
    while True:
        page = await store.list_transfers(status=None, kind=None, limit=2, cursor=cursor)
        seen += [t.id for t in page.items]
        sizes.append(len(page.items))
        if (cursor := page.next_cursor) is None:
            break
    assert seen == ids[::-1]
    assert sizes == [2, 2, 1]


async def test_pages_split_transfers_created_at_the_same_instant(store, submit):
    ids = {(await submit()).id for _ in range(5)}
    first = await store.list_transfers(status=None, kind=None, limit=3, cursor=None)
    rest = await store.list_transfers(status=None, kind=None, limit=3, cursor=first.next_cursor)
    listed = [t.id for t in first.items + rest.items]
    assert sorted(listed) == sorted(ids)
    assert rest.next_cursor is None


async def test_transfers_are_filtered_by_status_and_kind(store, submit):
    kept = await submit()
    await store.cancel_transfer((await submit()).id)
    page = await store.list_transfers(
        status=TransferStatus.STANDBY, kind="file", limit=10, cursor=None
    )
    assert [t.id for t in page.items] == [kept.id]
    trees = await store.list_transfers(status=None, kind="tree", limit=10, cursor=None)
    assert trees.items == []


async def test_a_malformed_cursor_is_refused(store):
    with pytest.raises(InvalidRequest, match="cursor"):
        await store.list_transfers(status=None, kind=None, limit=2, cursor="!!not-base64")


async def test_resubmission_with_the_same_spec_returns_the_same_transfer(store, clock):
    first, created = await store.create_transfer(
        new_transfer(submission_id="k", next_run_at=clock.now)
    )
    again, created_again = await store.create_transfer(
        new_transfer(submission_id="k", next_run_at=clock.now)
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id


async def test_resubmission_with_another_spec_conflicts(store, clock):
    await store.create_transfer(new_transfer(submission_id="k", next_run_at=clock.now))
    with pytest.raises(Conflict, match="'k'"):
        await store.create_transfer(
            new_transfer(sources=("src:other",), submission_id="k", next_run_at=clock.now)
        )


async def test_transfers_without_submission_id_are_all_created(store, clock):
    a, _ = await store.create_transfer(new_transfer(next_run_at=clock.now))
    b, created = await store.create_transfer(new_transfer(next_run_at=clock.now))
    assert created
    assert a.id != b.id


# --- the due loop -------------------------------------------------------------------------------


async def test_claim_takes_only_due_standby_transfers_and_opens_run_one(store, submit, clock):
    due = await submit()
    later = await submit(next_run_at=clock.now + timedelta(hours=1))
    await store.cancel_transfer((await submit()).id)
    [run] = await store.claim_due_transfers(clock.now, limit=10)
    assert (run.transfer_id, run.number, run.status) == (due.id, 1, RunStatus.ONGOING)
    assert await store.get_run(due.id, 1) == run
    claimed = await store.get_transfer(due.id)
    assert (claimed.status, claimed.runs, claimed.next_run_at) == (TransferStatus.ONGOING, 1, None)
    assert (await store.get_transfer(later.id)).status is TransferStatus.STANDBY


async def test_a_claimed_transfer_is_not_claimed_again(store, submit, clock):
    await submit()
    assert len(await store.claim_due_transfers(clock.now, limit=10)) == 1
    assert await store.claim_due_transfers(clock.now, limit=10) == []


async def test_claim_respects_the_limit_earliest_first(store, submit, clock):
    late = await submit(next_run_at=clock.now - timedelta(minutes=1))
    early = await submit(next_run_at=clock.now - timedelta(minutes=2))
    [run] = await store.claim_due_transfers(clock.now, limit=1)
    assert run.transfer_id == early.id
    assert (await store.get_transfer(late.id)).status is TransferStatus.STANDBY


async def test_next_due_at_is_the_earliest_standby(store, submit, clock):
    assert await store.next_due_at() is None
    await submit(next_run_at=clock.now + timedelta(hours=2))
    await submit(next_run_at=clock.now + timedelta(hours=1))
    assert await store.next_due_at() == clock.now + timedelta(hours=1)


async def test_unknown_run_is_not_found(store, submit):
    transfer = await submit()
    with pytest.raises(NotFound):
        await store.get_run(transfer.id, 1)


# --- expansion ----------------------------------------------------------------------------------


async def test_a_claimed_run_waits_for_expansion_until_marked(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    [(pending, run)] = await store.runs_to_expand(limit=10)
    assert (pending.id, run.number) == (transfer.id, 1)
    await store.mark_expanded(transfer.id, 1)
    assert await store.runs_to_expand(limit=10) == []


async def test_a_runs_last_tasks_mark_it_expanded_with_them(store, submit, clock, agent_id):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    transfer = await store.get_transfer(transfer.id)
    assert await store.add_tasks(transfer, 1, planned(2), expanded=True)
    assert await store.runs_to_expand(limit=10) == []
    run = await store.get_run(transfer.id, 1)
    assert (run.expanded, run.counts.total) == (True, 2)
    await store.record_results(agent_id, [done(task) for task in await lease(store, agent_id)])
    [ended] = await store.finish_runs(clock.now)
    assert (ended.status, ended.counts.done) == (RunStatus.COMPLETED, 2)


async def test_a_canceled_runs_last_tasks_are_not_added_but_it_is_expanded(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    transfer = await store.get_transfer(transfer.id)
    await store.cancel_transfer(transfer.id)
    assert not await store.add_tasks(transfer, 1, planned(2), expanded=True)
    assert (await store.get_run(transfer.id, 1)).expanded
    assert await tasks_of(store, transfer.id) == []


async def test_thousands_of_tasks_are_added_in_one_call(store, start):
    started = await start(tasks=0)
    await store.add_tasks(started.transfer, 1, planned(5_000))
    assert (await store.get_run(started.transfer.id, 1)).counts.total == 5_000
    tasks = await tasks_of(store, started.transfer.id)
    assert len(tasks) == 5_000
    assert {task.state for task, _ in tasks} == {TaskState.QUEUED}


async def test_planned_failures_are_counted_at_once(store, start):
    started = await start(tasks=0)
    broken = PlannedTask(
        parse_location("src:gone"), parse_location("dst:gone"), state=TaskState.FAILED, error="x"
    )
    await store.add_tasks(started.transfer, 1, [broken, *planned(2)])
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.total, counts.failed) == (3, 1)


# --- leasing ------------------------------------------------------------------------------------


async def test_each_task_is_leased_once(store, start, agent_id):
    await start(tasks=5)
    first = await lease(store, agent_id, limit=3)
    second = await lease(store, agent_id, limit=3)
    assert (len(first), len(second)) == (3, 2)
    assert {t.id for t in first}.isdisjoint(t.id for t in second)
    assert await lease(store, agent_id) == []


async def test_a_leased_task_carries_its_run_options_and_attempt(store, start, agent_id):
    options = TransferOptions(retries=1, priority=4)
    started = await start(tasks=2, options=options)
    leased = await lease(store, agent_id)
    assert {t.transfer_id for t in leased} == {started.transfer.id}
    assert {(t.run, t.attempt, t.options) for t in leased} == {(1, 1, options)}
    assert len({t.lease for t in leased}) == 1
    assert leased[0].source.storage == "src"


async def test_concurrent_leases_never_share_a_task(store, start, register_agent):
    await start(tasks=100)
    a, b = await register_agent("a"), await register_agent("b")
    first, second = await asyncio.gather(lease(store, a, 60), lease(store, b, 60))
    ids_a, ids_b = {t.id for t in first}, {t.id for t in second}
    assert ids_a.isdisjoint(ids_b)
    assert len(ids_a | ids_b) == 100


async def test_higher_priority_is_leased_first_then_age(store, start, agent_id):
    low = await start(tasks=2, options=TransferOptions(priority=1))
    high = await start(tasks=2, options=TransferOptions(priority=5))
    low_ids = [task.task_id for task, _ in await tasks_of(store, low.transfer.id)]
    high_ids = [task.task_id for task, _ in await tasks_of(store, high.transfer.id)]
    leased = await lease(store, agent_id, limit=3)
    assert {t.id for t in leased} == {*high_ids, low_ids[0]}


# --- results ------------------------------------------------------------------------------------


async def test_done_results_count_objects_and_bytes(store, start, agent_id):
    started = await start(tasks=2)
    leased = await lease(store, agent_id)
    assert len(await store.record_results(agent_id, [done(t, 100) for t in leased])) == 2
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.done, counts.bytes) == (2, 200)
    [(task, attempts), _] = await tasks_of(store, started.transfer.id)
    assert (task.state, task.checksum, task.bytes_done) == (TaskState.DONE, "adler32:1", 100)
    assert [a.number for a in attempts] == [1]


async def test_an_object_moved_is_its_tasks_last_attempt_and_the_others_have_rows(
    store, start, agent_id, clock
):
    """The attempt that moves an object is kept in its task's row, the others (here a failure
    retried) in rows of their own; the history reads both, in order, with the same fields."""
    started = await start(tasks=3)
    first, second, third = await lease(store, agent_id)
    leased_at = clock.now
    clock.advance(seconds=2)
    skipped = TaskResult(third.id, third.lease, TaskState.SKIPPED, bytes=7)
    retry = failed(second, "reset", retryable=True)
    await store.record_results(agent_id, [done(first, 100), retry, skipped])
    assert await store.requeue_waiting(clock.advance(seconds=RETRY_CAP.total_seconds())) == 1
    [again] = await lease(store, agent_id)
    await store.record_results(agent_id, [done(again, 50)])

    history = {obj.task_id: tried for obj, tried in await tasks_of(store, started.transfer.id)}
    [moved] = history[first.id]
    assert (moved.number, moved.state, moved.agent, moved.bytes) == (1, "DONE", agent_id, 100)
    assert (moved.started_at, moved.finished_at) == (leased_at, leased_at + timedelta(seconds=2))
    assert [(a.number, a.state, a.error) for a in history[second.id]] == [
        (1, "FAILED", "reset"),
        (2, "DONE", None),
    ]
    assert [(a.number, a.state, a.bytes) for a in history[third.id]] == [(1, "SKIPPED", 7)]
    async with store.engine.connect() as conn:
        kept = (
            await conn.execute(select(tables.attempts.c.task_id, tables.attempts.c.state))
        ).all()
    assert [tuple(row) for row in kept] == [(second.id, "FAILED")]


async def test_skipped_and_failed_results_are_counted(store, start, agent_id):
    started = await start(tasks=2)
    first, second = await lease(store, agent_id)
    skipped = TaskResult(first.id, first.lease, TaskState.SKIPPED)
    await store.record_results(agent_id, [skipped, failed(second)])
    counts = (await store.get_run(started.transfer.id, 1)).counts
    assert (counts.skipped, counts.failed, counts.done, counts.bytes) == (1, 1, 0, 0)
    assert await states_of(store, started.transfer.id) == [TaskState.SKIPPED, TaskState.FAILED]


async def test_a_duplicated_report_is_applied_once(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    assert len(await store.record_results(agent_id, [done(task)])) == 1
    assert len(await store.record_results(agent_id, [done(task)])) == 0
    assert (await store.get_run(started.transfer.id, 1)).counts.done == 1
    [(_task, attempts)] = await tasks_of(store, started.transfer.id)
    assert len(attempts) == 1


async def test_a_report_with_a_stale_lease_is_ignored(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    stale = TaskResult(task.id, "not-the-lease", TaskState.DONE, bytes=1)
    assert len(await store.record_results(agent_id, [stale])) == 0
    assert await states_of(store, started.transfer.id) == [TaskState.ACTIVE]


async def test_a_report_from_another_agent_is_ignored(store, start, agent_id, register_agent):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    other = await register_agent("other")
    assert len(await store.record_results(other, [done(task)])) == 0
    assert (await store.get_run(started.transfer.id, 1)).counts.done == 0


async def test_retryable_failure_waits_for_its_backoff(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "reset", retryable=True)])
    assert await states_of(store, started.transfer.id) == [TaskState.WAITING]
    assert await store.requeue_waiting(clock.now) == 0
    assert await lease(store, agent_id) == []
    assert (await store.get_run(started.transfer.id, 1)).counts.failed == 0


async def test_a_waiting_task_is_queued_again_after_its_backoff(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "reset", retryable=True)])
    assert await store.requeue_waiting(clock.advance(seconds=RETRY_CAP.total_seconds())) == 1
    [again] = await lease(store, agent_id)
    assert (again.id, again.attempt) == (task.id, 2)
    await store.record_results(agent_id, [done(again)])
    [(final, attempts)] = await tasks_of(store, started.transfer.id)
    assert (final.state, final.attempts) == (TaskState.DONE, 2)
    assert [(a.number, a.error) for a in attempts] == [(1, "reset"), (2, None)]


async def test_retryable_failure_without_attempts_left_fails(store, start, agent_id):
    started = await start(tasks=1, options=TransferOptions(retries=0))
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, retryable=True)])
    assert await states_of(store, started.transfer.id) == [TaskState.FAILED]
    assert (await store.get_run(started.transfer.id, 1)).counts.failed == 1


async def test_permanent_failure_fails_at_once(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [failed(task, "denied")])
    [(final, attempts)] = await tasks_of(store, started.transfer.id)
    assert (final.state, final.error, final.error_class) == (TaskState.FAILED, "denied", "e")
    assert [a.error for a in attempts] == ["denied"]


async def test_a_released_task_is_requeued_without_an_attempt(store, start, agent_id):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    released = TaskResult(task.id, task.lease, TaskState.QUEUED)
    assert len(await store.record_results(agent_id, [released])) == 1
    [again] = await lease(store, agent_id)
    assert (again.id, again.attempt) == (task.id, 1)
    [(_task, attempts)] = await tasks_of(store, started.transfer.id)
    assert attempts == []


async def test_outcomes_page_by_task_id(store, start):
    started = await start(tasks=5)
    first = await store.outcomes(started.transfer.id, 1, after=0, limit=2)
    rest = await store.outcomes(started.transfer.id, 1, after=first[-1].number, limit=10)
    ids = [obj.number for obj in first + rest]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


async def test_outcomes_of_one_state_page_among_themselves(store, start, agent_id):
    started = await start(tasks=5)
    leased = await lease(store, agent_id)
    failed = [TaskResult(t.id, t.lease, TaskState.FAILED, error="denied") for t in leased[1:4]]
    await store.record_results(agent_id, failed)
    transfer_id = started.transfer.id

    first = await store.outcomes(transfer_id, 1, after=0, limit=2, state=TaskState.FAILED)
    rest = await store.outcomes(
        transfer_id, 1, after=first[-1].number, limit=10, state=TaskState.FAILED
    )
    assert [o.task_id for o in first + rest] == sorted(t.id for t in leased[1:4])
    assert {o.state for o in first + rest} == {TaskState.FAILED}


# --- lease expiry -------------------------------------------------------------------------------


async def test_an_expired_lease_is_requeued_after_the_ttl(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    assert await store.reap_expired_leases(clock.advance(seconds=29)) == 0
    assert await store.reap_expired_leases(clock.advance(seconds=2)) == 1
    [(requeued, attempts)] = await tasks_of(store, started.transfer.id)
    assert requeued.state is TaskState.QUEUED
    assert [(a.number, a.error) for a in attempts] == [(1, "lease expired")]
    assert len(await store.record_results(agent_id, [done(task)])) == 0


async def test_an_expired_lease_fails_the_task_when_attempts_run_out(store, start, agent_id, clock):
    started = await start(tasks=1, options=TransferOptions(retries=1))
    for _ in range(2):
        await lease(store, agent_id)
        assert await store.reap_expired_leases(clock.advance(seconds=31)) == 1
    [(task, attempts)] = await tasks_of(store, started.transfer.id)
    assert (task.state, task.attempts, len(attempts)) == (TaskState.FAILED, 2, 2)
    assert (await store.get_run(started.transfer.id, 1)).counts.failed == 1


# --- agents -------------------------------------------------------------------------------------


async def _register(store, secret, name="agent-1"):
    return await store.register_agent(
        secret=secret, principal=None, name=name, host="h", capabilities={"protocols": ["file"]}
    )


async def test_a_one_time_secret_registers_its_agent(store):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    agent, token = await _register(store, secret)
    assert (agent.name, agent.state, agent.capabilities["protocols"]) == (
        "agent-1",
        AgentState.REGISTERED,
        ["file"],
    )
    principal = await store.authenticate(token)
    assert (principal.role, principal.agent_id) == (Role.DAEMON, agent.id)


async def test_a_secret_is_refused_when_reused(store):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    await _register(store, secret)
    with pytest.raises(SecretRejected, match="already used"):
        await _register(store, secret)


async def test_an_unknown_secret_is_refused(store):
    with pytest.raises(SecretRejected, match="unknown"):
        await _register(store, "0" * 64)


async def test_an_expired_secret_is_refused(store, clock):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    clock.advance(minutes=5)
    with pytest.raises(SecretRejected, match="expired"):
        await _register(store, secret)


async def test_a_secret_for_another_agent_is_refused_and_stays_valid(store):
    secret = await store.issue_agent_secret("agent-1", timedelta(minutes=5))
    with pytest.raises(SecretRejected, match="another agent"):
        await _register(store, secret, name="agent-2")
    agent, _token = await _register(store, secret)
    assert agent.name == "agent-1"


async def test_registering_again_revokes_the_old_token(store):
    secrets = [await store.issue_agent_secret("a", timedelta(hours=1)) for _ in range(2)]
    _agent, old = await _register(store, secrets[0], name="a")
    await _register(store, secrets[1], name="a")
    with pytest.raises(Unauthenticated):
        await store.authenticate(old)


async def test_registering_again_releases_the_old_leases(store, start, agent_id):
    started = await start(tasks=2)
    leased = await lease(store, agent_id)
    again = await register(store, "agent-1")
    assert again == agent_id
    assert await states_of(store, started.transfer.id) == [TaskState.QUEUED] * 2
    assert len(await store.record_results(agent_id, [done(t) for t in leased])) == 0
    assert [t.attempt for t in await lease(store, agent_id)] == [2, 2]


async def test_heartbeat_marks_alive_and_extends_leases(store, start, agent_id, clock):
    started = await start(tasks=1)
    [task] = await lease(store, agent_id)
    clock.advance(seconds=20)
    assert await store.record_heartbeat(agent_id, {"active": 1}, TTL, [task.id]) == []
    assert await store.reap_expired_leases(clock.advance(seconds=20)) == 0
    assert await states_of(store, started.transfer.id) == [TaskState.ACTIVE]
    [agent] = await store.list_agents()
    assert (agent.state, agent.status, agent.last_heartbeat) == (
        AgentState.ALIVE,
        {"active": 1},
        clock.now - timedelta(seconds=20),
    )


async def test_a_lost_agent_gives_its_tasks_back_at_once(store, start, agent_id):
    started = await start(tasks=2)
    await lease(store, agent_id)
    assert await store.mark_agent_lost(agent_id, "no heartbeat") == 2
    assert await states_of(store, started.transfer.id) == [TaskState.QUEUED] * 2
    [agent] = await store.list_agents()
    assert agent.state is AgentState.LOST


# --- cancel -------------------------------------------------------------------------------------


async def test_cancel_in_standby_is_immediate(store, submit, clock):
    transfer = await submit()
    outcome = await store.cancel_transfer(transfer.id)
    assert outcome.transfer.status is TransferStatus.CANCELED
    assert (outcome.canceled_tasks, outcome.stopping_tasks) == (0, 0)
    assert outcome.transfer.runs == 0
    assert await store.claim_due_transfers(clock.now, limit=10) == []
    assert await store.next_due_at() is None


async def test_cancel_while_ongoing_stops_queued_and_flags_active(store, start, agent_id):
    started = await start(tasks=3)
    [active] = await lease(store, agent_id, limit=1)
    outcome = await store.cancel_transfer(started.transfer.id)
    assert (outcome.canceled_tasks, outcome.stopping_tasks) == (2, 1)
    assert outcome.transfer.status is TransferStatus.ONGOING  # until its active task stops
    assert await states_of(store, started.transfer.id) == [
        TaskState.ACTIVE,
        TaskState.CANCELED,
        TaskState.CANCELED,
    ]
    assert await store.record_heartbeat(agent_id, {}, TTL, [active.id]) == [active.id]
    assert await lease(store, agent_id) == []


async def test_a_canceled_run_ends_canceled_when_its_active_task_stops(
    store, start, agent_id, clock
):
    started = await start(tasks=2)
    [active] = await lease(store, agent_id, limit=1)
    await store.cancel_transfer(started.transfer.id)
    assert await store.finish_runs(clock.now) == []
    stopped = TaskResult(active.id, active.lease, TaskState.CANCELED, error="stopped")
    await store.record_results(agent_id, [stopped])
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.CANCELED
    assert (await store.get_run(started.transfer.id, 1)).counts.canceled == 2
    assert (await store.get_transfer(started.transfer.id)).status is TransferStatus.CANCELED


async def test_a_lease_the_agent_does_not_list_is_left_to_expire(store, start, agent_id, clock):
    started = await start(tasks=2)
    first, _second = await lease(store, agent_id)  # say the reply carrying ``second`` was lost
    clock.advance(seconds=20)
    assert await store.record_heartbeat(agent_id, {}, TTL, [first.id]) == []
    assert await store.reap_expired_leases(clock.advance(seconds=20)) == 1
    assert await states_of(store, started.transfer.id) == [TaskState.ACTIVE, TaskState.QUEUED]


async def test_a_heartbeat_names_tasks_the_agent_no_longer_holds(store, start, agent_id, clock):
    await start(tasks=1)
    [task] = await lease(store, agent_id)
    await store.reap_expired_leases(clock.advance(minutes=1))
    assert await store.record_heartbeat(agent_id, {}, TTL, [task.id]) == [task.id]


async def test_a_task_stopped_by_its_agent_without_a_cancel_is_retried(store, start, agent_id):
    started = await start(tasks=1)
    [active] = await lease(store, agent_id)
    stopped = TaskResult(active.id, active.lease, TaskState.CANCELED, error="agent stopping")
    await store.record_results(agent_id, [stopped])
    assert await states_of(store, started.transfer.id) == [TaskState.WAITING]


async def test_adding_the_same_objects_again_adds_nothing(store, start):
    started = await start(tasks=0)
    await store.add_tasks(started.transfer, 1, planned(3))
    await store.add_tasks(started.transfer, 1, planned(5))  # a listing resumed after a crash
    assert len(await tasks_of(store, started.transfer.id)) == 5
    assert (await store.get_run(started.transfer.id, 1)).counts.total == 5


async def test_a_failure_reported_after_cancel_counts_as_canceled(store, start, agent_id):
    started = await start(tasks=1)
    [active] = await lease(store, agent_id)
    await store.cancel_transfer(started.transfer.id)
    await store.record_results(agent_id, [failed(active, retryable=True)])
    assert await states_of(store, started.transfer.id) == [TaskState.CANCELED]


async def test_an_expired_lease_of_a_canceled_task_cancels_it(store, start, agent_id, clock):
    started = await start(tasks=1)
    await lease(store, agent_id)
    await store.cancel_transfer(started.transfer.id)
    await store.reap_expired_leases(clock.advance(minutes=1))
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.CANCELED


async def test_a_task_released_after_cancel_lets_the_run_end(store, start, agent_id, clock):
    started = await start(tasks=1)
    [active] = await lease(store, agent_id)
    await store.cancel_transfer(started.transfer.id)
    await store.record_results(agent_id, [TaskResult(active.id, active.lease, TaskState.QUEUED)])
    assert await states_of(store, started.transfer.id) == [TaskState.CANCELED]
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.CANCELED


async def test_tasks_added_after_cancel_are_dropped(store, start):
    started = await start(tasks=0)
    await store.cancel_transfer(started.transfer.id)
    await store.add_tasks(started.transfer, 1, planned(3))
    assert await tasks_of(store, started.transfer.id) == []


async def test_cancel_of_a_finished_transfer_is_refused(store, start, agent_id, clock):
    started = await start(tasks=1)
    await store.record_results(agent_id, [done(t) for t in await lease(store, agent_id)])
    await store.finish_runs(clock.now)
    with pytest.raises(AlreadyFinished, match="COMPLETED"):
        await store.cancel_transfer(started.transfer.id)


async def test_cancel_of_a_canceled_transfer_is_refused(store, submit):
    transfer = await submit()
    await store.cancel_transfer(transfer.id)
    with pytest.raises(AlreadyFinished):
        await store.cancel_transfer(transfer.id)


async def test_cancel_of_an_unknown_transfer_is_not_found(store):
    with pytest.raises(TransferNotFound):
        await store.cancel_transfer("00000000-0000-0000-0000-000000000000")


# --- finishing runs -----------------------------------------------------------------------------


async def _finish_with(store, start, agent_id, clock, outcomes):
    """Start a run with one task per entry, report each ("done" or an error), finish it."""
    started = await start(tasks=len(outcomes))
    leased = await lease(store, agent_id)
    results = [
        done(t) if o == "done" else failed(t, o) for t, o in zip(leased, outcomes, strict=True)
    ]
    await store.record_results(agent_id, results)
    [run] = await store.finish_runs(clock.advance(seconds=5))
    return run, await store.get_transfer(started.transfer.id)


async def test_a_run_where_everything_moved_completes(store, start, agent_id, clock):
    run, transfer = await _finish_with(store, start, agent_id, clock, ["done", "done"])
    assert (run.status, run.finished_at, run.error) == (RunStatus.COMPLETED, clock.now, None)
    assert (transfer.status, transfer.error) == (TransferStatus.COMPLETED, None)
    assert (await store.get_run(transfer.id, 1)).status is RunStatus.COMPLETED


async def test_a_run_with_some_failures_completes_with_errors(store, start, agent_id, clock):
    run, transfer = await _finish_with(
        store, start, agent_id, clock, ["done", "disk on fire", "second failure"]
    )
    assert run.status is RunStatus.COMPLETED_WITH_ERRORS
    assert transfer.status is TransferStatus.COMPLETED_WITH_ERRORS
    assert transfer.error == run.error
    assert transfer.error.startswith("2 of 3 objects failed")
    assert "disk on fire" in transfer.error
    assert "second failure" not in transfer.error


async def test_a_run_where_nothing_moved_fails(store, start, agent_id, clock):
    run, transfer = await _finish_with(store, start, agent_id, clock, ["no", "no"])
    assert (run.status, transfer.status) == (RunStatus.FAILED, TransferStatus.FAILED)


async def test_the_run_error_names_the_first_failed_object(store, start, agent_id, clock):
    _run, transfer = await _finish_with(store, start, agent_id, clock, ["done", "timed out"])
    assert "src:f1" in transfer.error


async def test_the_run_error_is_one_line(store, start, agent_id, clock):
    _run, transfer = await _finish_with(
        store, start, agent_id, clock, ["Traceback:\n  File x\nOSError: boom"]
    )
    assert "\n" not in transfer.error


async def test_a_run_with_unfinished_tasks_stays_open(store, start, agent_id, clock):
    started = await start(tasks=2)
    [first, _second] = await lease(store, agent_id)
    await store.record_results(agent_id, [done(first)])
    assert await store.finish_runs(clock.now) == []
    assert (await store.get_transfer(started.transfer.id)).status is TransferStatus.ONGOING


async def test_a_run_still_expanding_stays_open(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    assert await store.finish_runs(clock.now) == []
    await store.mark_expanded(transfer.id, 1)
    [run] = await store.finish_runs(clock.now)
    assert run.status is RunStatus.COMPLETED


async def test_a_run_that_could_not_be_expanded_fails_with_the_reason(store, submit, clock):
    transfer = await submit()
    await store.claim_due_transfers(clock.now, limit=10)
    await store.mark_expanded(transfer.id, 1, error="storage 'src' is not registered")
    [run] = await store.finish_runs(clock.now)
    assert (run.status, run.error) == (RunStatus.FAILED, "storage 'src' is not registered")
    finished = await store.get_transfer(transfer.id)
    assert (finished.status, finished.error) == (TransferStatus.FAILED, run.error)


async def test_a_finished_run_is_finished_once(store, start, agent_id, clock):
    await _finish_with(store, start, agent_id, clock, ["done"])
    assert await store.finish_runs(clock.now) == []


async def test_a_checksum_mismatch_is_retried_then_fails_with_its_class(
    store, start, agent_id, clock
):
    started = await start(tasks=1, options=TransferOptions(retries=1))
    mismatch = "checksum mismatch on dst:f0: expected adler32:0000000a, got adler32:0000000b"

    def damaged(task):
        return TaskResult(
            task.id,
            task.lease,
            TaskState.FAILED,
            error_class="checksum",
            error=mismatch,
            retryable=True,
        )

    [first] = await lease(store, agent_id)
    await store.record_results(agent_id, [damaged(first)])
    assert await states_of(store, started.transfer.id) == [TaskState.WAITING]
    await store.requeue_waiting(clock.advance(minutes=1))
    [second] = await lease(store, agent_id)
    await store.record_results(agent_id, [damaged(second)])
    [(task, attempts)] = await tasks_of(store, started.transfer.id)
    assert task.state is TaskState.FAILED
    assert (task.error_class, task.error) == ("checksum", mismatch)
    assert [a.error_class for a in attempts] == ["checksum", "checksum"]
