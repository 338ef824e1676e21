"""Sources with replicas in a transfer's spec: parsed from the API's and the stored form,
written back the same way (a spec without replicas keeps its JSON), and refused where a
transfer could not use them."""

from __future__ import annotations

import pytest

from ferry.domain.locations import Location, parse_location
from ferry.domain.replicas import REPLICAS_MAX, parse_sources
from ferry.domain.transfers import TransferKind, TransferSpec, file_task
from ferry.errors import InvalidRequest, PathOutsideStorage

DEST = parse_location("dst:out")


def spec(sources: list[str | list[str]], kind: TransferKind = TransferKind.FILE) -> TransferSpec:
    first, replicas = parse_sources(sources)
    return TransferSpec(kind, first, DEST, replicas=replicas)


def test_plain_sources_have_no_replicas_and_keep_their_json() -> None:
    plain = spec(["a:x.bin", "a:y.bin"])
    assert plain.replicas == ()
    assert plain.to_json()["sources"] == ["a:x.bin", "a:y.bin"]


def test_a_list_is_one_object_with_its_places_in_order() -> None:
    made = spec([["a:x.bin", "b:mirror/x.bin", "c:x.bin"], "a:y.bin"])
    assert made.sources == (Location("a", "x.bin"), Location("a", "y.bin"))
    assert made.replicas == ((Location("b", "mirror/x.bin"), Location("c", "x.bin")), ())
    assert made.to_json()["sources"] == [["a:x.bin", "b:mirror/x.bin", "c:x.bin"], "a:y.bin"]
    assert [str(p) for p in made.all_sources()] == [
        "a:x.bin",
        "b:mirror/x.bin",
        "c:x.bin",
        "a:y.bin",
    ]
    assert made.storages() == {"a", "b", "c", "dst"}


def test_a_list_of_one_is_a_plain_source() -> None:
    assert spec([["a:x.bin"]]).to_json()["sources"] == ["a:x.bin"]


def test_the_task_is_named_after_its_first_place_and_carries_the_others() -> None:
    made = spec([["a:x.bin", "b:other-name.bin"]])
    places = made.alternatives()[0]
    task = file_task(places[0], DEST, places[1:])
    assert task.destination == Location("dst", "out/x.bin")
    assert task.replicas == (Location("b", "other-name.bin"),)


@pytest.mark.parametrize(
    ("sources", "kind", "needle"),
    [
        ([["a:in", "b:in"]], TransferKind.TREE, "replicas apply to file transfers only"),
        ([["a:x", "b:x", "a:x"]], TransferKind.FILE, "the same place twice"),
        ([["a:x", "b:"]], TransferKind.FILE, "names a storage root"),
        ([[f"s{n}:x" for n in range(REPLICAS_MAX + 1)]], TransferKind.FILE, "at most 16"),
        ([[]], TransferKind.FILE, "names at least one"),
    ],
)
def test_replicas_a_transfer_cannot_use_are_refused(
    sources: list[str | list[str]], kind: TransferKind, needle: str
) -> None:
    with pytest.raises(InvalidRequest, match=needle):
        spec(sources, kind)


def test_a_replica_is_confined_to_its_storage() -> None:
    with pytest.raises(PathOutsideStorage):
        spec([["a:x", "b:../../etc/passwd"]])
