"""The cache of parsed transfer specs: the spec its JSON says, parsed once, bounded."""

from __future__ import annotations

from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.store.sql_rows import SpecCache, spec_from_json


def spec_json(n: int) -> dict[str, object]:
    spec = TransferSpec(
        TransferKind.TREE,
        (parse_location(f"src:in/{n}"),),
        parse_location("dst:out"),
        TransferOptions(labels=("nightly",)),
    )
    return spec.to_json()


def test_a_spec_is_parsed_once_and_equals_its_json() -> None:
    cache = SpecCache()
    first = cache.spec_of("t1", spec_json(1))
    assert first == spec_from_json(spec_json(1))
    assert cache.spec_of("t1", spec_json(1)) is first


def test_the_oldest_specs_are_forgotten_beyond_the_limit() -> None:
    cache = SpecCache(limit=2)
    one = cache.spec_of("t1", spec_json(1))
    two = cache.spec_of("t2", spec_json(2))
    three = cache.spec_of("t3", spec_json(3))
    assert cache.spec_of("t3", spec_json(3)) is three
    assert cache.spec_of("t2", spec_json(2)) is two
    again = cache.spec_of("t1", spec_json(1))  # parsed anew: it had been forgotten
    assert again == one
    assert again is not one
