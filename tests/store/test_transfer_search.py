"""The transfers list's text search: a transfer is found by the start of its id, one of its
labels, or a part of its sources or destination, the text taken literally; in pages, like
every other filter."""

from __future__ import annotations

from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer, TransferFilter


async def test_a_transfer_is_found_by_id_label_source_or_destination(store, clock):
    async def create(sources, destination="dst:out", labels=(), notify=None, scope="default"):
        spec = TransferSpec(
            TransferKind.FILE,
            tuple(parse_location(s) for s in sources),
            parse_location(destination),
            TransferOptions(labels=labels, notify=notify),
        )
        transfer, _ = await store.create_transfer(NewTransfer(scope, "admin", spec, {}, clock.now))
        return transfer.id

    async def found(text, **where):
        where = TransferFilter(text=text, **where)
        page = await store.list_transfers(limit=100, cursor=None, where=where)
        return {t.id for t in page.items}

    underscore = await create(["src:in/a_b.bin", "src:in/Café.txt"], labels=("nightly",))
    other = await create(["src:in/axb.bin"], destination="dst:Archive/2030")
    hooked = await create(["src:in/z.bin"], notify="http://hook.example/s3cret")
    physics, _ = await store.create_transfer(
        NewTransfer("physics", "alice", _spec(), {}, clock.now)
    )

    assert await found(underscore[:8]) == {underscore}
    assert await found(underscore[:8].upper()) == {underscore}
    assert await found("nightly") == {underscore}
    assert await found("a_b") == {underscore}  # "_" is no wildcard
    assert await found("%") == set()
    assert await found("café.TXT") == {underscore}  # the second source; ASCII case aside
    assert await found("archive/20") == {other}
    assert await found("in/") == {underscore, other, hooked, physics.id}
    assert await found("s3cret") == set()  # the options are not searched
    assert await found("in/", scope="physics") == {physics.id}
    assert await found("in/", scopes=("default",)) == {underscore, other, hooked}
    assert await found('"') == set()


async def test_a_search_is_paged_like_the_other_filters(store, clock):
    made = []
    for n in range(5):
        spec = _spec(f"src:data/run-{n}.bin" if n != 2 else "src:elsewhere/x.bin")
        transfer, _ = await store.create_transfer(
            NewTransfer("default", "admin", spec, {}, clock.now)
        )
        made.append(transfer.id)
        clock.advance(seconds=1)
    where = TransferFilter(text="data/run-")
    first = await store.list_transfers(limit=2, cursor=None, where=where)
    assert [t.id for t in first.items] == [made[4], made[3]]
    second = await store.list_transfers(limit=2, cursor=first.next_cursor, where=where)
    assert [t.id for t in second.items] == [made[1], made[0]]
    assert second.next_cursor is None


def _spec(source: str = "src:in/x.bin") -> TransferSpec:
    return TransferSpec(
        TransferKind.FILE, (parse_location(source),), parse_location("dst:out"), TransferOptions()
    )
