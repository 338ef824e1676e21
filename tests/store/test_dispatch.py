"""Dispatch in the store, on SQLite and PostgreSQL: channels and scopes, the lease under their
limits, channels drained and stopped, agents' statistics, and transfer listing filters."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event

from ferry.domain.channels import Channel, ChannelState
from ferry.domain.locations import parse_location
from ferry.domain.sites import ANY_SITE
from ferry.domain.states import TaskState
from ferry.domain.timetable import Timetable
from ferry.domain.transfers import (
    PlannedTask,
    Scope,
    Storage,
    Transfer,
    TransferKind,
    TransferOptions,
    TransferSpec,
)
from ferry.errors import NotFound
from ferry.store.abc import AgentStatistics, NewTransfer, Shares, TaskResult, TransferFilter
from ferry.store.sql import SqlStore
from ferry.store.sql_dispatch import _ACTIVATE
from ferry.store.sql_tasks import CHANNEL_STOPPED

from .factories import register

TTL = timedelta(seconds=30)
AB = ("A", "B")
AC = ("A", "C")


@pytest.fixture
async def sites(store, tmp_path) -> None:
    """Storage ``src`` at site A, ``dst`` at B and ``dst2`` at C."""
    for name, site in (("src", "A"), ("dst", "B"), ("dst2", "C")):
        await store.put_storage(Storage(name, (tmp_path / name).as_uri(), site=site))


@pytest.fixture
def queue(store, clock, sites):
    """A started transfer of ``count`` tasks from ``src`` to ``destination`` in ``scope``."""
    made = Counter[str]()

    async def queue(
        count: int,
        *,
        scope: str = "default",
        destination: str = "dst",
        options: TransferOptions | None = None,
    ) -> Transfer:
        made[scope] += 1
        prefix = f"{scope}-{made[scope]}-"
        spec = TransferSpec(
            TransferKind.FILE,
            (parse_location("src:in/a.bin"),),
            parse_location(f"{destination}:out"),
            options or TransferOptions(),
        )
        new = NewTransfer(scope, "admin", spec, {}, clock.now)
        transfer, _created = await store.create_transfer(new)
        await store.claim_due_transfers(clock.now, 100)
        transfer = await store.get_transfer(transfer.id)
        tasks = [
            PlannedTask(
                parse_location(f"src:{prefix}{n}"), parse_location(f"{destination}:{prefix}{n}"), 10
            )
            for n in range(count)
        ]
        await store.add_tasks(transfer, transfer.runs, tasks)
        await store.mark_expanded(transfer.id, transfer.runs)
        return transfer

    return queue


async def lease(store, agent_id, limit=100):
    return await store.lease_tasks(agent_id, limit=limit, ttl=TTL)


def done(task, nbytes=10):
    return TaskResult(task.id, task.lease, TaskState.DONE, bytes=nbytes, checksum="adler32:1")


def stopped(task):
    """What an agent says of a copy it stopped when the server asked: it does not know why."""
    return TaskResult(task.id, task.lease, TaskState.CANCELED, error="canceled while copying x")


async def tasks_of(store, transfer_id):
    """Each object of the run (up to 10,000) with its attempts."""
    found = await store.outcomes(transfer_id, 1, after=0, limit=10_000)
    return [(obj, obj.history) for obj in found]


# --- channels and scopes --------------------------------------------------------------------------


async def test_a_lease_with_nothing_queued_leaves_the_writer_alone(store, queue, agent_id):
    """Every report wakes the agents' waiting leases: with nothing queued, they look on a
    reader's connection and come back empty, leaving the writer to the run's close."""
    written: list[str] = []
    writer = store.engines[0]  # the writer's engine

    def record(_conn, _cursor, statement, _parameters, _context, _many):
        written.append(statement)

    event.listen(writer, "before_cursor_execute", record)
    try:
        assert await store.lease_tasks(agent_id, limit=10, ttl=TTL) == []
        assert written == []
        transfer = await queue(2)
        written.clear()
        leased = await store.lease_tasks(agent_id, limit=10, ttl=TTL)
    finally:
        event.remove(writer, "before_cursor_execute", record)
    assert {task.transfer_id for task in leased} == {transfer.id}
    assert len(leased) == 2
    assert any(statement.lstrip().upper().startswith("UPDATE TASKS") for statement in written)


async def test_a_channel_is_stored_replaced_and_deleted(store):
    await store.put_channel(Channel("A", "B", max_active=2))
    await store.put_channel(Channel(ANY_SITE, ANY_SITE, bandwidth=100))
    await store.put_channel(Channel("A", "B", max_active=5, state=ChannelState.DRAIN))

    assert sorted(await store.list_channels(), key=lambda c: c.key) == [
        Channel(ANY_SITE, ANY_SITE, bandwidth=100),
        Channel("A", "B", max_active=5, state=ChannelState.DRAIN),
    ]
    await store.delete_channel("A", "B")
    assert await store.list_channels() == [Channel(ANY_SITE, ANY_SITE, bandwidth=100)]
    with pytest.raises(NotFound):
        await store.delete_channel("A", "B")


async def test_a_scope_weight_is_set_and_listed_by_name(store):
    await store.put_scope(Scope("physics", 4))
    await store.put_scope(Scope("default", 2))
    assert await store.list_scopes() == [Scope("default", 2), Scope("physics", 4)]


async def test_a_scope_comes_into_being_with_its_first_transfer(store, queue):
    await queue(1, scope="biology")
    await store.put_scope(Scope("chemistry", 5))
    await queue(1, scope="chemistry")  # an existing scope keeps its weight
    assert await store.list_scopes() == [
        Scope("biology", 1),
        Scope("chemistry", 5),
        Scope("default", 1),
    ]


# --- the lease under channel limits ---------------------------------------------------------------


async def test_max_active_holds_across_agents(store, queue, register_agent):
    await store.put_channel(Channel("A", "B", max_active=2))
    await queue(5)
    first, second = await register_agent("agent-1"), await register_agent("agent-2")

    held = await lease(store, first)
    assert len(held) == 1  # the channel's room of 2 is shared with the idle second agent
    assert len(await lease(store, second)) == 1
    assert await lease(store, first) == []
    assert await store.active_by_channel() == {AB: 2}

    await store.record_results(first, [done(held[0])])
    assert len(await lease(store, second)) == 1
    assert await lease(store, first) == []
    assert await store.active_by_channel() == {AB: 2}


async def test_concurrent_leases_from_two_servers_never_exceed_max_active(
    store, queue, register_agent, database_url, clock
):
    await store.put_channel(Channel("A", "B", max_active=3))
    await queue(20)
    agents = [await register_agent(f"agent-{n}") for n in range(6)]
    other_server = SqlStore(database_url, clock=clock)
    await other_server.open()
    try:
        servers = [store, other_server] * 3
        batches = await asyncio.gather(
            *(lease(server, agent, limit=10) for server, agent in zip(servers, agents, strict=True))
        )
    finally:
        await other_server.close()

    assert sum(len(batch) for batch in batches) == 3
    assert await store.active_by_channel() == {AB: 3}


async def test_the_most_specific_channel_governs_the_lease(store, queue, agent_id):
    await store.put_channel(Channel(ANY_SITE, ANY_SITE, max_active=1))
    await store.put_channel(Channel("A", "B", max_active=3))
    await queue(5)
    await queue(5, destination="dst2")

    leased = await lease(store, agent_id)

    destinations = Counter(task.destination.storage for task in leased)
    assert destinations == {"dst": 3, "dst2": 1}
    assert await store.active_by_channel() == {AB: 3, ("*", "*"): 1}


async def test_a_channel_with_no_limit_leases_everything(store, queue, agent_id):
    await store.put_channel(Channel("A", "B", bandwidth=1000))
    await queue(4)
    assert len(await lease(store, agent_id, limit=10)) == 4


async def test_a_leased_task_gets_its_share_of_the_channel_bandwidth(store, queue, agent_id):
    await store.put_channel(Channel("A", "B", max_active=4, bandwidth=1000))
    unlimited = await queue(1)
    slow = await queue(1, options=TransferOptions(bandwidth=100))

    by_transfer = {task.transfer_id: task for task in await lease(store, agent_id)}

    assert by_transfer[unlimited.id].options.bandwidth == 500  # two active: half each
    assert by_transfer[slow.id].options.bandwidth == 100


async def test_a_channels_bandwidth_is_shared_out_again_as_its_tasks_end(store, queue, agent_id):
    """Defect 18.15: nine objects ended, and the tenth went on alone at its tenth of the
    channel. Each heartbeat gets every held task's share of the channel now."""
    await store.put_channel(Channel("A", "B", max_active=10, bandwidth=1000))
    await queue(4)
    slow = await queue(1, options=TransferOptions(bandwidth=100))
    held = await lease(store, agent_id)
    ids = [task.id for task in held]
    assert sorted((await store.bandwidth_shares(agent_id, ids)).rates.values()) == [
        100,
        200,
        200,
        200,
        200,
    ]

    last = next(task for task in held if task.transfer_id != slow.id)
    await store.record_results(agent_id, [done(t) for t in held if t is not last])
    assert (await store.bandwidth_shares(agent_id, ids)).rates == {last.id: 1000}


async def test_no_share_is_sent_where_no_channel_has_a_bandwidth(store, queue, agent_id):
    await store.put_channel(Channel("A", "B", max_active=10))
    await queue(2)
    held = await lease(store, agent_id)
    shares = await store.bandwidth_shares(agent_id, [task.id for task in held])
    assert shares == Shares({}, [], None)
    assert not any(task.throttled for task in held)


async def test_a_timetable_sets_the_rate_the_clock_says(store, queue, agent_id, clock):
    """Issue 24, item 4: the store's clock reads Tuesday 12:00 UTC. Until 13:00 the channel
    shares 1000 B/s; then it is unlimited, and its tasks stay throttle-capable for the
    Tuesday after, when the rate comes back."""
    timetable = Timetable.parse("Tue 11:00,1000; Tue 13:00,off")
    await store.put_channel(Channel("A", "B", max_active=10, timetable=timetable))
    await queue(2)
    held = await lease(store, agent_id)
    ids = [task.id for task in held]
    assert [task.options.bandwidth for task in held] == [500, 500]
    assert all(task.throttled for task in held)
    assert await store.bandwidth_shares(agent_id, ids) == Shares(
        {ids[0]: 500, ids[1]: 500}, [], 3600.0
    )

    clock.advance(hours=1)
    assert await store.bandwidth_shares(agent_id, ids) == Shares({}, ids, (7 * 24 - 2) * 3600.0)


async def test_a_timetable_is_read_on_its_channels_clock(store, queue, agent_id):
    """12:00 UTC is 13:00 in Rome in January: the 13:00 entry holds there."""
    timetable = Timetable.parse("12:00,1000; 13:00,3000")
    channel = Channel("A", "B", timetable=timetable, timezone="Europe/Rome")
    await store.put_channel(channel)
    await queue(1)
    [task] = await lease(store, agent_id)
    assert task.options.bandwidth == 3000
    assert await store.list_channels() == [channel]


async def test_a_draining_channel_leases_nothing_and_its_active_tasks_go_on(store, queue, agent_id):
    await store.put_channel(Channel("A", "B"))
    transfer = await queue(3)
    held = await lease(store, agent_id, limit=2)
    await store.put_channel(Channel("A", "B", state=ChannelState.DRAIN))

    assert await lease(store, agent_id) == []
    assert await store.record_heartbeat(agent_id, {}, TTL, [t.id for t in held]) == []
    changes = await store.record_results(agent_id, [done(t) for t in held])

    assert [c.state for c in changes] == [TaskState.DONE, TaskState.DONE]
    states = Counter(task.state for task, _attempts in await tasks_of(store, transfer.id))
    assert states == {TaskState.DONE: 2, TaskState.QUEUED: 1}


async def test_a_stopped_channel_stops_its_tasks_and_queues_them_again(store, queue, agent_id):
    await store.put_channel(Channel("A", "B"))
    transfer = await queue(3, options=TransferOptions(retries=1))
    held = await lease(store, agent_id, limit=2)
    await store.put_channel(Channel("A", "B", state=ChannelState.STOPPED))

    assert await lease(store, agent_id) == []
    ids = sorted(t.id for t in held)
    assert await store.record_heartbeat(agent_id, {}, TTL, ids) == ids
    changes = await store.record_results(agent_id, [stopped(t) for t in held])

    assert {c.state for c in changes} == {TaskState.QUEUED}
    outcomes = await tasks_of(store, transfer.id)
    assert {task.state for task, _attempts in outcomes} == {TaskState.QUEUED}
    ended = {task.task_id: [a.state for a in attempts] for task, attempts in outcomes}
    assert ended == {ids[0]: ["STOPPED"], ids[1]: ["STOPPED"], max(ended): []}
    assert await store.active_by_channel() == {}
    # Defect 18.16: the stop was recorded as "canceled while copying".
    why = {(a.error_class, a.error) for _task, attempts in outcomes for a in attempts}
    assert why == {("stopped", CHANNEL_STOPPED)}
    assert "its channel was stopped" in CHANNEL_STOPPED


async def test_a_task_canceled_before_its_copy_began_shows_no_attempt(store, queue, agent_id):
    """Defect 18.16: objects "canceled before it started" showed attempt 1, with a start."""
    transfer = await queue(2)
    first, second = await lease(store, agent_id)
    await store.cancel_transfer(transfer.id)
    never = TaskResult(
        first.id, first.lease, TaskState.CANCELED, error="canceled before it started", started=False
    )
    copying = TaskResult(
        second.id, second.lease, TaskState.CANCELED, bytes=7, error="canceled while copying x"
    )

    changes = await store.record_results(agent_id, [never, copying])

    assert {c.state for c in changes} == {TaskState.CANCELED}
    ended = {obj.task_id: (obj, history) for obj, history in await tasks_of(store, transfer.id)}
    task, attempts = ended[first.id]
    assert (task.state, task.attempts, attempts) == (TaskState.CANCELED, 0, [])
    assert task.error == "canceled before it started"
    task, attempts = ended[second.id]
    assert (task.state, task.attempts, [a.bytes for a in attempts]) == (TaskState.CANCELED, 1, [7])


async def test_a_task_given_back_before_its_copy_began_is_leased_as_a_first_attempt(
    store, queue, agent_id
):
    await queue(1)
    [task] = await lease(store, agent_id)
    back = TaskResult(task.id, task.lease, TaskState.QUEUED, error="stopping", started=False)
    [change] = await store.record_results(agent_id, [back])
    assert change.state is TaskState.QUEUED
    [again] = await lease(store, agent_id)
    assert again.attempt == 1


async def test_a_stop_does_not_use_up_a_retry(store, queue, agent_id):
    await store.put_channel(Channel("A", "B"))
    transfer = await queue(1, options=TransferOptions(retries=1))  # two attempts
    [task] = await lease(store, agent_id)
    await store.put_channel(Channel("A", "B", state=ChannelState.STOPPED))
    await store.record_results(agent_id, [stopped(task)])
    await store.put_channel(Channel("A", "B"))

    [again] = await lease(store, agent_id)
    assert again.attempt == 2
    failure = TaskResult(again.id, again.lease, TaskState.FAILED, error="reset", retryable=True)
    [change] = await store.record_results(agent_id, [failure])

    assert change.state is TaskState.WAITING  # one attempt is still left
    [(_task, attempts)] = await tasks_of(store, transfer.id)
    assert [a.state for a in attempts] == ["STOPPED", "FAILED"]


async def test_a_canceled_task_in_a_stopped_channel_ends_canceled(store, queue, agent_id):
    await store.put_channel(Channel("A", "B"))
    transfer = await queue(1)
    [task] = await lease(store, agent_id)
    await store.put_channel(Channel("A", "B", state=ChannelState.STOPPED))
    await store.cancel_transfer(transfer.id)

    [change] = await store.record_results(agent_id, [stopped(task)])

    assert change.state is TaskState.CANCELED


async def test_a_wildcard_channel_stops_the_pairs_it_governs(store, queue, agent_id):
    await queue(1)
    [task] = await lease(store, agent_id)
    await store.put_channel(Channel("A", ANY_SITE, state=ChannelState.STOPPED))
    assert await store.record_heartbeat(agent_id, {}, TTL, [task.id]) == [task.id]


# --- fairness in lease batches --------------------------------------------------------------------


async def test_scope_weights_share_a_lease_batch(store, queue, agent_id):
    await store.put_scope(Scope("default", 3))
    heavy = await queue(10)
    light = await queue(10, scope="physics")

    leased = await lease(store, agent_id, limit=8)

    assert Counter(task.transfer_id for task in leased) == {heavy.id: 6, light.id: 2}


async def test_leases_of_one_alternate_between_equal_scopes(store, queue, agent_id):
    first = await queue(5)
    second = await queue(5, scope="physics")

    order = [(await lease(store, agent_id, limit=1))[0].transfer_id for _ in range(4)]

    assert order == [first.id, second.id, first.id, second.id]


async def test_priority_is_strict_in_a_scope_but_not_across_scopes(store, queue, agent_id):
    urgent = await queue(5, options=TransferOptions(priority=5))
    later = await queue(5, destination="dst2", options=TransferOptions(priority=1))
    other = await queue(5, scope="physics", options=TransferOptions(priority=1))

    leased = await lease(store, agent_id, limit=6)

    assert Counter(task.transfer_id for task in leased) == {urgent.id: 3, other.id: 3}
    assert later.id not in {task.transfer_id for task in leased}


# --- agents' statistics ---------------------------------------------------------------------------


async def test_agent_statistics_count_outcomes_bytes_and_throughput(store, queue, agent_id, clock):
    await queue(5, options=TransferOptions(retries=0))
    first, second, third, fourth, _fifth = await lease(store, agent_id)
    await store.record_results(
        agent_id,
        [
            done(first, 600),
            TaskResult(second.id, second.lease, TaskState.SKIPPED),
            TaskResult(third.id, third.lease, TaskState.FAILED, error="denied"),
            TaskResult(fourth.id, fourth.lease, TaskState.CANCELED, error="stopping"),
        ],
    )

    stats = await store.agent_statistics([agent_id])

    assert stats == {
        agent_id: AgentStatistics(
            ongoing=1, succeeded=2, failed=1, canceled=1, bytes=600, throughput=10.0
        )
    }
    assert stats[agent_id].total == 5


async def test_agent_throughput_counts_only_the_last_minute(store, queue, agent_id, clock):
    await queue(1)
    [task] = await lease(store, agent_id)
    await store.record_results(agent_id, [done(task, 6000)])
    clock.advance(seconds=61)

    [stats] = (await store.agent_statistics([agent_id])).values()

    assert (stats.succeeded, stats.bytes, stats.ongoing, stats.throughput) == (1, 6000, 0, 0.0)


async def test_statistics_of_no_agents_or_unknown_ones_are_empty(store, agent_id):
    assert await store.agent_statistics([]) == {}
    assert await store.agent_statistics(["no-such-agent"]) == {}
    assert await store.agent_statistics([agent_id]) == {
        agent_id: AgentStatistics(
            ongoing=0, succeeded=0, failed=0, canceled=0, bytes=0, throughput=0.0
        )
    }


# --- listing filters ------------------------------------------------------------------------------


async def test_transfers_are_filtered_by_submitter_scope_schedule_kind_and_label(store, clock):
    async def create(scope, submitter, schedule, labels):
        spec = TransferSpec(
            TransferKind.FILE,
            (parse_location("src:a"),),
            parse_location("dst:out"),
            TransferOptions(labels=labels),
        )
        transfer, _ = await store.create_transfer(
            NewTransfer(scope, submitter, spec, schedule, clock.now)
        )
        return transfer.id

    at = {"kind": "at", "at": (clock.now + timedelta(hours=1)).isoformat()}
    nightly = await create("default", "admin", {}, ("nightly",))
    raw = await create("physics", "alice", at, ("nightly", "raw"))
    plain = await create("physics", "admin", {}, ())

    async def listed(**where):
        page = await store.list_transfers(limit=100, cursor=None, where=TransferFilter(**where))
        return {t.id for t in page.items}

    assert await listed() == {nightly, raw, plain}
    assert await listed(submitter="alice") == {raw}
    assert await listed(scope="physics") == {raw, plain}
    assert await listed(schedule_kind="at") == {raw}
    assert await listed(schedule_kind="direct") == {nightly, plain}
    assert await listed(label="nightly") == {nightly, raw}
    assert await listed(label="raw", scope="physics", submitter="alice") == {raw}
    assert await listed(label="nightly", submitter="nobody") == set()
    assert await listed(label="weekly") == set()


async def test_a_lease_finds_its_tasks_by_their_ids_not_by_walking_the_queue(tmp_path):
    """SQLite's plan of the lease's update: the hundreds of ids it names, each through the
    primary key. (Without statistics, the planner took ``state = ?`` on the queue index and
    walked the entry of every queued task: a fifth of a lease's time at 30,000 queued.)"""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await store.open()
    await store.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def explain(_conn, _cursor, statement, parameters, _context, _many):
        return f"EXPLAIN QUERY PLAN {statement}", parameters

    now = datetime(2030, 1, 1, tzinfo=UTC)
    values = {"ids": [1, 2, 3], "agent": "a", "lease": "l", "now": now, "expires": now}
    with engine.connect() as conn:
        plan = str(conn.execute(_ACTIVATE, values).fetchall())
    engine.dispose()
    assert "INTEGER PRIMARY KEY" in plan, plan
    assert "ix_tasks_queue" not in plan, plan


# Partial indexes, each of the tasks in one state: a whole scan of one is a scan of those tasks.
_OF_ONE_STATE = (
    "ix_tasks_queue",
    "ix_tasks_lease_agent",
    "ix_tasks_run_active",
    "ix_tasks_run_failed",
    "ix_tasks_not_before",
)


def _scans_of_all_tasks(plan: list[str]) -> list[str]:
    """The steps of a plan that read every task: a table scan, or a scan of an index of every
    state (a SEARCH, or the scan of a partial index, reads only the tasks it names)."""
    return [
        step
        for step in plan
        if step.startswith("SCAN tasks") and not any(name in step for name in _OF_ONE_STATE)
    ]


async def test_no_statement_of_the_dispatch_reads_every_task(tmp_path, clock):
    """Every statement on the tasks that the store runs for a tree's life, from its listing
    to its end (lease, heartbeat, results with a retry, an expiry, an agent's statistics and
    its leave), as SQLite plans it: none reads every task. The queue's and the leases'
    searches go through indexes of their one state, and every statement names a state as a
    literal, not as a parameter."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}", clock=clock)
    await store.open()
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, many):
        if " tasks" in statement and not statement.lstrip().upper().startswith("INSERT"):
            seen.append((statement, parameters[0] if many else parameters))

    for engine in store.engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        await store.bootstrap()
        await store.put_storage(Storage("src", (tmp_path / "src").as_uri(), site="A"))
        await store.put_storage(Storage("dst", (tmp_path / "dst").as_uri(), site="B"))
        await store.put_channel(Channel("A", "B", max_active=50))  # the active tasks counted
        agent = await register(store, "agent-1")
        transfer = await _tree_of(store, clock, 6)
        first, second, *_expiring = await store.lease_tasks(agent, limit=5, ttl=TTL)
        await store.record_heartbeat(agent, {}, TTL, [first.id, second.id], {first.id: 5})
        retry = TaskResult(second.id, second.lease, TaskState.FAILED, error="reset", retryable=True)
        await store.record_results(agent, [done(first), retry])
        clock.advance(seconds=60)
        await store.reap_expired_leases(clock.now)  # the other three expire
        assert await store.requeue_waiting(clock.now) == 1  # the retry's backoff is over
        await store.agent_statistics([agent])
        await store.active_by_channel()
        await store.lease_tasks(agent, limit=5, ttl=TTL)
        await store.get_transfer_with_run(transfer.id)  # with its bytes in flight
        await store.retire_agent(agent)
        await store.finish_runs(clock.now)
        # A run whose object failed ends with that object's error; a cancel stops the rest.
        other = await register(store, "agent-2")
        failing = await _tree_of(store, clock, 1)
        stopped = await _tree_of(store, clock, 2, name="canceled")
        leased = await store.lease_tasks(other, limit=50, ttl=TTL)
        one = next(task for task in leased if task.transfer_id == failing.id)
        assert stopped.id in {task.transfer_id for task in leased}
        await store.record_results(
            other,
            [TaskResult(one.id, one.lease, TaskState.FAILED, error="denied", retryable=False)],
        )
        await store.finish_runs(clock.now)
        error = (await store.get_transfer(failing.id)).error
        assert error == "1 of 1 objects failed: src:in/f0: denied"
        assert (await store.cancel_transfer(stopped.id)).stopping_tasks == 2
    finally:
        await store.close()
    database = sqlite3.connect(tmp_path / "plans.db")
    try:
        plans = {
            statement: [row[3] for row in database.execute(f"EXPLAIN QUERY PLAN {statement}", p)]
            for statement, p in seen
        }
    finally:
        database.close()
    assert len(plans) >= 8, plans
    reading_all = {
        statement: steps for statement, steps in plans.items() if _scans_of_all_tasks(steps)
    }
    assert reading_all == {}
    # A state bound as a parameter made SQLite prepare the statement again at each execution.
    assert [sql for sql in plans if re.search(r"tasks\.state (=|IN) \(?\?", sql)] == []
    assert any("ix_tasks_queue" in " ".join(steps) for steps in plans.values()), plans
    assert any("ix_tasks_lease_agent" in " ".join(steps) for steps in plans.values()), plans
    for index in ("ix_tasks_run_active", "ix_tasks_run_failed", "ix_tasks_not_before"):
        assert any(index in " ".join(steps) for steps in plans.values()), (index, plans)


async def _tree_of(store, clock, objects, name="in"):
    spec = TransferSpec(
        TransferKind.TREE, (parse_location(f"src:{name}"),), parse_location("dst:x")
    )
    transfer, _ = await store.create_transfer(NewTransfer("default", "admin", spec, {}, clock.now))
    await store.claim_due_transfers(clock.now, 10)
    transfer = await store.get_transfer(transfer.id)
    planned = [
        PlannedTask(parse_location(f"src:{name}/f{n}"), parse_location(f"dst:x/{name}{n}"), 10)
        for n in range(objects)
    ]
    await store.add_tasks(transfer, transfer.runs, planned)
    await store.mark_expanded(transfer.id, transfer.runs)
    return transfer


async def test_the_tail_of_the_queue_is_shared_out_among_the_live_agents(
    store, queue, agent_id, register_agent
):
    """Defect 18.15: the first agent to ask took a whole tree of 40 objects while the other
    idled. Less than an agent asks for is shared among the live agents."""
    other = await register_agent("agent-2")
    await queue(40)

    first = await lease(store, agent_id, limit=100)
    second = await lease(store, other, limit=100)

    assert (len(first), len(second)) == (20, 20)


async def test_a_queue_longer_than_a_lease_gives_an_agent_all_it_asked(
    store, queue, agent_id, register_agent
):
    await register_agent("agent-2")
    await queue(40)
    assert len(await lease(store, agent_id, limit=16)) == 16
    assert len(await lease(store, agent_id, limit=100)) == 12  # half of the 24 left


async def test_the_tail_goes_whole_to_the_one_agent_that_asks_when_the_others_are_busy(
    store, queue, agent_id, register_agent
):
    other = await register_agent("agent-2")
    await queue(10)
    [busy] = await lease(store, other, limit=1)
    assert busy is not None
    assert len(await lease(store, agent_id, limit=100)) == 9
