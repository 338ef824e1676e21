"""The outcomes of a numbered run whose small objects travel in chunks (issue 21, A1 at the
store's level): every object by its number, from its chunk list, carriers and outcome rows,
merged with the run's single tasks (docs/small-files.md §3, "GET /outcomes")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ferry.api.wire import INT64_MAX
from ferry.domain.states import TaskState
from ferry.store import tables as t

from .chunk_rows import (
    add_carrier,
    add_chunk,
    add_single,
    insert_rows,
    listed,
    number_run,
    outcome,
    set_counts,
)
from .factories import planned


@pytest.fixture
def opened(store, clock, submit):
    """A run opened by the due loop, numbered, with no task yet: (transfer id, run)."""

    async def opened() -> tuple[str, int]:
        transfer = await submit()
        [run] = await store.claim_due_transfers(clock.now, 100)
        await number_run(store, transfer.id, run.number)
        return transfer.id, run.number

    return opened


async def walk(store, transfer_id, run, limit, state=None):
    """Every object of the run, a page of ``limit`` at a time from cursor 0."""
    found, after = [], 0
    while page := await store.outcomes(transfer_id, run, after=after, limit=limit, state=state):
        assert len(page) <= limit
        found += page
        after = page[-1].number
    return found


async def test_every_object_of_10000_in_chunks_shows_queued_before_any_report(store, opened):
    transfer_id, run = await opened()
    for first in range(1, 10_001, 500):
        await add_chunk(store, transfer_id, run, first, listed(first, 500, size=4096))
        await add_carrier(store, transfer_id, run, first, 500)

    objects = await walk(store, transfer_id, run, limit=777)

    assert [o.number for o in objects] == list(range(1, 10_001))
    assert {(o.state, o.attempts, o.size, o.bytes_done) for o in objects} == {
        (TaskState.QUEUED, 0, 4096, 0)
    }
    assert str(objects[0].source) == "src:in/d/f0000001"
    assert str(objects[-1].destination) == "dst:out/d/f0010000"
    assert all(o.history == [] and o.checksum is None for o in objects)


async def test_failures_spread_over_a_run_are_found_each_in_its_chunk(store, opened, clock):
    # Three failures over 10,000 objects: each is looked up alone, not through every chunk
    # between them; one of them in a chunk whose retry carrier lists it.
    transfer_id, run = await opened()
    for first in range(1, 10_001, 500):
        await add_chunk(store, transfer_id, run, first, listed(first, 500))
        await add_carrier(store, transfer_id, run, first, 500, state="DONE", attempts=1)
    await add_carrier(store, transfer_id, run, 4001, 500, [320], state="DONE", attempts=2)
    io = {"error_class": "io", "error": "denied"}
    await insert_rows(
        store,
        t.outcomes,
        [
            outcome(transfer_id, run, 3, 1, "FAILED", clock.now, **io),
            outcome(transfer_id, run, 4321, 1, "WAITING", clock.now, **io),
            outcome(transfer_id, run, 4321, 2, "FAILED", clock.now, **io),
            outcome(transfer_id, run, 9999, 1, "FAILED", clock.now, **io),
        ],
    )

    failed = await walk(store, transfer_id, run, limit=1000, state=TaskState.FAILED)

    assert [(o.number, str(o.source), o.attempts) for o in failed] == [
        (3, "src:in/d/f0000003", 1),
        (4321, "src:in/d/f0004321", 2),
        (9999, "src:in/d/f0009999", 1),
    ]
    every = {o.number: o for o in await walk(store, transfer_id, run, limit=1000)}
    assert failed == [every[3], every[4321], every[9999]]


@pytest.fixture
async def mixed(store, opened, clock):
    """Chunk A (objects 1–5), single 6 FAILED, no object 7, chunk B (8–10), single 11 DONE,
    chunk C (12–14) not started.

    A's first carrier reported 1 DONE, 2 retryable (a WAITING retry carrier of it), 3 FAILED;
    its lease expired with 4 and 5 (LOST), it was requeued with them and leased again by
    agent-2. B's carrier reported 8 DONE and 9 stopped by a cancel; 10 never started."""
    transfer_id, run = await opened()
    now = clock.now
    await add_chunk(store, transfer_id, run, 1, listed(1, 5))
    await add_chunk(store, transfer_id, run, 8, listed(8, 3))
    await add_chunk(store, transfer_id, run, 12, listed(12, 3))
    active = {"lease_agent": "agent-2", "leased_at": now}
    carrier = await add_carrier(
        store, transfer_id, run, 1, 5, [3, 4], state="ACTIVE", attempts=2, **active
    )
    retry = await add_carrier(store, transfer_id, run, 1, 5, [1], state="WAITING", attempts=1)
    await add_single(store, transfer_id, run, 6, state="FAILED", attempts=3, error="gone")
    await add_carrier(store, transfer_id, run, 8, 3, state="CANCELED", attempts=1, error="canceled")
    await add_single(store, transfer_id, run, 11, state="DONE", attempts=1, bytes_done=10)
    await add_carrier(store, transfer_id, run, 12, 3)
    lost = {"error_class": "lost", "error": "lease expired"}
    await insert_rows(
        store,
        t.outcomes,
        [
            outcome(transfer_id, run, 1, 1, "DONE", now),
            outcome(transfer_id, run, 2, 1, "WAITING", now, error_class="io", error="reset"),
            outcome(transfer_id, run, 3, 1, "FAILED", now, error_class="io", error="denied"),
            outcome(transfer_id, run, 4, 1, "LOST", now, **lost),
            outcome(transfer_id, run, 5, 1, "LOST", now, **lost),
            outcome(transfer_id, run, 8, 1, "DONE", now),
            outcome(transfer_id, run, 9, 1, "CANCELED", now, error="canceled"),
        ],
    )
    return transfer_id, run, carrier, retry


async def test_each_object_shows_its_outcome_or_its_latest_carriers_state(store, mixed):
    transfer_id, run, carrier, retry = mixed

    objects = {o.number: o for o in await walk(store, transfer_id, run, limit=2)}

    assert {n: o.state.value for n, o in objects.items()} == {
        1: "DONE",
        2: "WAITING",
        3: "FAILED",
        4: "ACTIVE",
        5: "ACTIVE",
        6: "FAILED",
        8: "DONE",
        9: "CANCELED",
        10: "CANCELED",
        11: "DONE",
        12: "QUEUED",
        13: "QUEUED",
        14: "QUEUED",
    }
    done = objects[1]
    assert (done.bytes_done, done.checksum, done.attempts) == (4096, "adler32:00000001", 1)
    assert [(a.number, a.state, a.agent) for a in done.history] == [(1, "DONE", "agent-1")]
    waiting = objects[2]
    assert (waiting.task_id, waiting.attempts, waiting.error) == (retry, 1, "reset")
    # Its attempt FAILED, as a single task's does; the object waits for its retry.
    assert [(a.number, a.state, a.error) for a in waiting.history] == [(1, "FAILED", "reset")]
    assert (objects[3].error_class, objects[3].error) == ("io", "denied")
    for number in (4, 5):
        assert (objects[number].agent, objects[number].task_id) == ("agent-2", carrier)
        assert [a.state for a in objects[number].history] == ["LOST"]
        assert objects[number].attempts == 2
    assert (objects[10].error, objects[10].history) == ("canceled", [])
    assert {(objects[n].attempts, objects[n].agent) for n in (12, 13, 14)} == {(0, None)}
    assert str(objects[6].source) == "src:in/f6"
    assert str(objects[5].source) == "src:in/d/f0000005"


async def test_a_failed_filter_pages_failed_objects_of_chunks_and_single_tasks_in_order(
    store, mixed
):
    transfer_id, run, _carrier, _retry = mixed

    failed = await walk(store, transfer_id, run, limit=1, state=TaskState.FAILED)

    assert [(o.number, o.error) for o in failed] == [(3, "denied"), (6, "gone")]


@pytest.mark.parametrize(
    ("state", "numbers"),
    [
        (TaskState.DONE, [1, 8, 11]),
        (TaskState.WAITING, [2]),
        (TaskState.ACTIVE, [4, 5]),
        (TaskState.CANCELED, [9, 10]),
        (TaskState.QUEUED, [12, 13, 14]),
    ],
)
async def test_other_filters_keep_the_objects_in_their_state(store, mixed, state, numbers):
    transfer_id, run, _carrier, _retry = mixed

    found = await walk(store, transfer_id, run, limit=2, state=state)

    assert [o.number for o in found] == numbers


async def test_a_page_after_a_cursor_inside_a_chunk_starts_at_the_next_object(store, mixed):
    transfer_id, run, _carrier, _retry = mixed

    page = await store.outcomes(transfer_id, run, after=9, limit=3)

    assert [o.number for o in page] == [10, 11, 12]


@pytest.mark.parametrize("state", [None, *TaskState])
async def test_a_page_after_the_largest_number_is_empty(store, mixed, state):
    transfer_id, run, _carrier, _retry = mixed

    assert await store.outcomes(transfer_id, run, after=INT64_MAX, limit=10, state=state) == []


@pytest.mark.parametrize("state", [None, *TaskState])
async def test_a_page_after_the_largest_number_of_single_tasks_or_none_is_empty(
    store, start, opened, state
):
    started = await start(3)
    empty = await opened()
    for transfer_id, run in ((started.transfer.id, started.run.number), empty):
        page = await store.outcomes(transfer_id, run, after=INT64_MAX, limit=10, state=state)
        assert page == []


async def test_the_run_error_names_the_lowest_numbered_failed_object(store, mixed, clock):
    transfer_id, run, _carrier, _retry = mixed
    await set_counts(store, transfer_id, run, total=2, done=1, failed=1)

    [finished] = await store.finish_runs(clock.now)

    assert finished.error == "1 of 2 objects failed: src:in/d/f0000003: denied"


async def test_an_unnumbered_run_reads_its_tasks_by_id(store, start):
    started = await start(3)
    tasks = await store.outcomes(started.transfer.id, 1, after=0, limit=10)

    assert [o.number for o in tasks] == [o.task_id for o in tasks]
    assert [str(o.source) for o in tasks] == [str(p.source) for p in planned(3)]
    later = await store.outcomes(started.transfer.id, 1, after=tasks[0].number, limit=10)
    assert [o.number for o in later] == [o.number for o in tasks[1:]]


async def test_failures_of_the_last_hour_count_failed_objects_of_chunks(store, opened, clock):
    transfer_id, run = await opened()
    now, link = clock.now, {"source_site": "A", "destination_site": "B"}
    await add_chunk(store, transfer_id, run, 1, listed(1, 4))
    await add_carrier(store, transfer_id, run, 1, 4, state="DONE", attempts=1, **link)
    failed = {"state": "FAILED", "attempts": 1, "finished_at": now, "error_class": "io"}
    await add_single(store, transfer_id, run, 5, error="gone", **failed, **link)
    io = {"error_class": "io", "error": "denied"}
    await insert_rows(
        store,
        t.outcomes,
        [
            outcome(transfer_id, run, 1, 1, "FAILED", now - timedelta(hours=2), **io),
            outcome(transfer_id, run, 2, 1, "FAILED", now, **io),
            outcome(transfer_id, run, 3, 1, "FAILED", now, **io),
            outcome(transfer_id, run, 4, 1, "FAILED", now, error_class="checksum", error="x"),
        ],
    )

    [activity] = await store.link_activity(now - timedelta(hours=1), None)

    assert (activity.source_site, activity.destination_site) == ("A", "B")
    assert activity.failed == 4
    assert (activity.top_error, activity.top_error_count) == ("io: denied", 3)


@pytest.fixture
async def busier(store, mixed, clock):
    """``mixed``, and: single tasks 15 QUEUED, 16 ACTIVE, 17 WAITING, 18 SKIPPED; chunk D
    (19–22) whose one carrier, ACTIVE, reported 19 DONE and 20 SKIPPED so far; 23, a file
    --delete-extra deleted (DELETED); 24, held by a pause (PAUSED)."""
    transfer_id, run, _carrier, _retry = mixed
    now, active = clock.now, {"lease_agent": "agent-3", "leased_at": clock.now}
    await add_single(store, transfer_id, run, 15)
    await add_single(store, transfer_id, run, 16, state="ACTIVE", attempts=1, **active)
    await add_single(store, transfer_id, run, 17, state="WAITING", attempts=1, error="reset")
    await add_single(store, transfer_id, run, 18, state="SKIPPED", attempts=1)
    await add_chunk(store, transfer_id, run, 19, listed(19, 4))
    await add_carrier(store, transfer_id, run, 19, 4, state="ACTIVE", attempts=1, **active)
    await insert_rows(
        store,
        t.outcomes,
        [
            outcome(transfer_id, run, 19, 1, "DONE", now),
            outcome(transfer_id, run, 20, 1, "SKIPPED", now),
        ],
    )
    await add_single(store, transfer_id, run, 23, state="DELETED", error="not in the source")
    await add_single(store, transfer_id, run, 24, state="PAUSED")
    return transfer_id, run


@pytest.mark.parametrize("state", list(TaskState))
async def test_a_filter_finds_what_the_unfiltered_pages_show_in_its_state(store, busier, state):
    transfer_id, run = busier
    every = await walk(store, transfer_id, run, limit=1000)
    assert len({o.state for o in every}) == len(TaskState)

    for after in range(0, 24):
        expected = [o for o in every if o.number > after and o.state is state]
        for limit in (1, 2, 1000):
            page = await store.outcomes(transfer_id, run, after=after, limit=limit, state=state)
            assert page == expected[:limit], (after, limit)


async def test_history_times_are_aware_and_as_stored(store, mixed, clock):
    transfer_id, run, _carrier, _retry = mixed

    [done] = await store.outcomes(transfer_id, run, after=0, limit=1)

    [attempt] = done.history
    assert attempt.started_at == attempt.finished_at == clock.now
    assert attempt.finished_at.utcoffset() == timedelta(0)
