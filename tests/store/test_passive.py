"""Passive transfers in the store: the objects of a pull that the client already has."""

from __future__ import annotations

from datetime import timedelta

from ferry.domain.locations import Location, parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer
from ferry.store.sql_passive import CLIENT_STORAGE, PASSIVE_AGENT


async def start_pull(store, clock, names: list[str]) -> str:
    here = Location(CLIENT_STORAGE, "")
    planned = [PlannedTask(parse_location(f"src:in/{n}"), here.child(n), 10) for n in names]
    spec = TransferSpec(TransferKind.FILE, (parse_location("src:in"),), here, TransferOptions())
    new = NewTransfer("default", "admin", spec, {"kind": "direct"}, clock.now)
    transfer, _capability, _expires = await store.create_passive_transfer(
        new, planned, "pull", timedelta(minutes=5)
    )
    return str(transfer.id)


async def test_objects_the_client_has_are_skipped_each_with_its_attempt(store, clock) -> None:
    transfer_id = await start_pull(store, clock, ["a", "b", "sub/c"])

    skipped = await store.skip_passive_objects(transfer_id, ["a", "sub/c", "not-in-the-pull"])
    again = await store.skip_passive_objects(transfer_id, ["a"])

    assert (skipped, again) == (2, 0)
    run = await store.get_run(transfer_id, 1)
    assert (run.counts.total, run.counts.skipped, run.counts.done) == (3, 2, 0)
    found = {
        obj.destination.path: (obj.state, obj.history)
        for obj in await store.outcomes(transfer_id, 1, after=0, limit=10)
    }
    assert found["b"] == (TaskState.QUEUED, [])
    for name in ("a", "sub/c"):
        state, (attempt,) = found[name]
        assert state is TaskState.SKIPPED
        assert (attempt.number, attempt.state, attempt.agent) == (1, "SKIPPED", PASSIVE_AGENT)


async def test_an_object_being_fetched_is_not_skipped(store, clock) -> None:
    transfer_id = await start_pull(store, clock, ["a"])
    await store.start_passive_task(transfer_id, "a", timedelta(minutes=1))

    assert await store.skip_passive_objects(transfer_id, ["a"]) == 0
    [obj] = await store.outcomes(transfer_id, 1, after=0, limit=10)
    assert (obj.state, obj.history) == (TaskState.ACTIVE, [])
