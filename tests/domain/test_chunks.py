"""The packing rule: which objects of a listing page travel together, in which chunks."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.domain.chunks import (
    CHUNK_BYTES,
    CHUNK_OBJECTS,
    REMOTE_CHUNK_OBJECTS,
    REMOTE_SPREAD,
    SMALL_OBJECT,
    PlannedChunk,
    is_small,
    pack,
)
from ferry.domain.locations import Location, parse_location
from ferry.domain.states import TaskState
from ferry.domain.transfers import (
    PlannedTask,
    TransferKind,
    TransferOptions,
    TransferSpec,
    file_task,
    tree_task,
)

SOURCE = parse_location("src:data")
DESTINATION = parse_location("dst:copy")
TREE = TransferSpec(TransferKind.TREE, (SOURCE,), DESTINATION)
KiB, MiB = 1024, 1024 * 1024


def _page(*sizes: int | None) -> list[PlannedTask]:
    """One planned file per size, in listing order, as expand plans a tree's page."""
    return [_file(place, size) for place, size in enumerate(sizes)]


def _file(place: int, size: int | None) -> PlannedTask:
    task = tree_task(SOURCE, f"d{place // 100}/f{place:05}", DESTINATION, 0)
    return replace(task, size=size)


def _shape(packed: list[PlannedTask | PlannedChunk]) -> list[tuple[int, int] | int | None]:
    """Each chunk as (first, count), each single task as its size."""
    return [
        (item.first, item.count) if isinstance(item, PlannedChunk) else item.size for item in packed
    ]


def _flatten(packed: list[PlannedTask | PlannedChunk]) -> list[PlannedTask]:
    tasks: list[PlannedTask] = []
    for item in packed:
        if isinstance(item, PlannedChunk):
            assert item.first == len(tasks), "a chunk starts at its place in the page"
            tasks += [tree_task(item.source, rel, item.destination, n) for rel, n in item.objects]
        else:
            tasks.append(item)
    return tasks


def test_a_chunk_holds_its_objects_relative_to_both_roots():
    page = _page(10, 0, 4 * KiB)
    [chunk] = pack(page, TREE, SOURCE, remote=False)
    assert chunk == PlannedChunk(
        SOURCE, DESTINATION, 0, (("d0/f00000", 10), ("d0/f00001", 0), ("d0/f00002", 4 * KiB))
    )
    assert (chunk.count, chunk.size) == (3, 10 + 4 * KiB)


def test_an_object_of_256_kib_is_small_and_one_byte_more_is_not():
    page = _page(SMALL_OBJECT, SMALL_OBJECT, SMALL_OBJECT + 1, 1, 1)
    assert _shape(pack(page, TREE, SOURCE, remote=False)) == [(0, 2), SMALL_OBJECT + 1, (3, 2)]


def test_a_large_object_closes_the_chunk_and_travels_alone():
    page = _page(1, 2, 3, 8 * MiB, 4, 5)
    packed = pack(page, TREE, SOURCE, remote=False)
    assert _shape(packed) == [(0, 3), 8 * MiB, (4, 2)]
    assert packed[1] is page[3]


def test_a_chunk_holds_at_most_500_objects():
    page = _page(*[4 * KiB] * (2 * CHUNK_OBJECTS + 3))
    assert _shape(pack(page, TREE, SOURCE, remote=False)) == [
        (0, CHUNK_OBJECTS),
        (CHUNK_OBJECTS, CHUNK_OBJECTS),
        (2 * CHUNK_OBJECTS, 3),
    ]


def test_a_chunk_holds_at_most_32_mib():
    fit = CHUNK_BYTES // SMALL_OBJECT  # 128 objects of 256 KiB make exactly 32 MiB
    page = _page(*[SMALL_OBJECT] * (fit + 10))
    packed = pack(page, TREE, SOURCE, remote=False)
    assert _shape(packed) == [(0, fit), (fit, 10)]
    assert isinstance(packed[0], PlannedChunk)
    assert packed[0].size == CHUNK_BYTES


def test_an_object_that_would_pass_32_mib_opens_the_next_chunk():
    fit = CHUNK_BYTES // SMALL_OBJECT
    page = _page(*[SMALL_OBJECT] * (fit - 1), SMALL_OBJECT - 1, 2, 3)
    packed = pack(page, TREE, SOURCE, remote=False)
    assert _shape(packed) == [(0, fit), (fit, 2)]


def test_a_chunk_holds_at_most_64_objects_when_a_storage_is_remote():
    page = _page(*[0] * (17 * REMOTE_CHUNK_OBJECTS + 5))
    shape = _shape(pack(page, TREE, SOURCE, remote=True))
    assert shape[:2] == [(0, REMOTE_CHUNK_OBJECTS), (REMOTE_CHUNK_OBJECTS, REMOTE_CHUNK_OBJECTS)]
    assert shape[-1] == (17 * REMOTE_CHUNK_OBJECTS, 5)


@pytest.mark.parametrize(("small", "each"), [(48, 3), (10, 2), (160, 10), (17, 2)])
def test_a_remote_page_of_few_small_objects_spreads_over_several_chunks(small: int, each: int):
    page = _page(*[0] * small)
    shape = _shape(pack(page, TREE, SOURCE, remote=True))
    assert {count for _first, count in shape[:-1]} == {each}
    assert len(shape) >= min(REMOTE_SPREAD, small // 2)


def test_a_small_object_alone_stays_a_single_task():
    page = _page(8 * MiB, 1, 8 * MiB, *[0] * CHUNK_OBJECTS, 7)
    packed = pack(page, TREE, SOURCE, remote=False)
    assert _shape(packed) == [8 * MiB, 1, 8 * MiB, (3, CHUNK_OBJECTS), 7]
    assert packed[1] is page[1]
    assert packed[-1] is page[-1]


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(_file(1, None), id="unknown size"),
        pytest.param(replace(_file(1, 0), folder=True), id="empty folder"),
        pytest.param(
            replace(_file(1, 0), state=TaskState.SKIPPED, error="a link, not followed"),
            id="skipped link",
        ),
        pytest.param(
            replace(_file(1, 0), state=TaskState.FAILED, error_class="permanent", error="gone"),
            id="listing error",
        ),
        pytest.param(
            replace(_file(1, 10), state=TaskState.FAILED, error_class="permanent", error="in"),
            id="refused destination",
        ),
        pytest.param(
            replace(_file(1, 10), destination=Location("dst", "elsewhere/f")),
            id="not below the destination folder",
        ),
        pytest.param(replace(_file(1, 10), source=Location("src", "other/f")), id="not below"),
    ],
)
def test_only_plain_listed_files_of_known_small_size_are_packed(entry: PlannedTask):
    page = [_file(0, 1), _file(1, 1), entry, _file(3, 1), _file(4, 1)]
    packed = pack(page, TREE, SOURCE, remote=False)
    assert _shape(packed) == [(0, 2), entry.size, (3, 2)]
    assert packed[1] is entry


@pytest.mark.parametrize(
    "options",
    [TransferOptions(unzip=True), TransferOptions(bandwidth=10 * MiB)],
    ids=["unzip", "bandwidth"],
)
def test_unzip_and_bandwidth_pack_nothing(options: TransferOptions):
    page = _page(1, 2, 3)
    spec = replace(TREE, options=options)
    assert pack(page, spec, SOURCE, remote=False) == page


def test_a_file_list_packs_nothing():
    spec = TransferSpec(
        TransferKind.FILE, (parse_location("src:a"), parse_location("src:b")), DESTINATION
    )
    page = [replace(file_task(s, DESTINATION), size=1) for s in spec.sources]
    assert pack(page, spec, spec.sources[0], remote=False) == page


def test_a_tree_at_the_storage_root_packs_paths_from_the_root():
    root, destination = parse_location("src:"), parse_location("dst:")
    spec = TransferSpec(TransferKind.TREE, (root,), destination)
    page = [tree_task(root, name, destination, 1) for name in ("a", "b/c")]
    [chunk] = pack(page, spec, root, remote=False)
    assert isinstance(chunk, PlannedChunk)
    assert chunk.objects == (("a", 1), ("b/c", 1))
    assert _flatten([chunk]) == page


def test_numbers_are_consecutive_in_listing_order():
    page = _page(1, 1, None, 1, 1, 1, 8 * MiB, 1, *[0] * 70, 1)
    packed = pack(page, TREE, SOURCE, remote=False)
    assert _shape(packed) == [(0, 2), None, (3, 3), 8 * MiB, (7, 72)]
    assert _flatten(packed) == page


def test_the_agent_and_the_packing_rule_agree_on_what_is_small():
    assert is_small(SMALL_OBJECT, unzip=False, bandwidth=None)
    assert is_small(0, unzip=False, bandwidth=None)
    assert not is_small(SMALL_OBJECT + 1, unzip=False, bandwidth=None)
    assert not is_small(None, unzip=False, bandwidth=None)
    assert not is_small(1, unzip=True, bandwidth=None)
    assert not is_small(1, unzip=False, bandwidth=1)


# Pages drawn as runs of one kind of entry, so that long runs of small objects reach the
# limits of a chunk without drawing a thousand entries one by one.
_SIZES = {
    "empty": 0,
    "tiny": 1,
    "edge": SMALL_OBJECT,
    "large": SMALL_OBJECT + 1,
    "huge": 64 * MiB,
    "unknown": None,
}
_KINDS = st.sampled_from([*_SIZES, "folder", "failed"])
_RUNS = st.lists(st.tuples(_KINDS, st.integers(1, 300)), max_size=8)


def _entry(place: int, kind: str) -> PlannedTask:
    if kind == "folder":
        return replace(_file(place, 0), folder=True)
    if kind == "failed":
        return replace(_file(place, 0), state=TaskState.FAILED, error="unreadable")
    return _file(place, _SIZES[kind])


def _small(task: PlannedTask) -> bool:
    known = task.size is not None and task.size <= SMALL_OBJECT
    return known and task.state is TaskState.QUEUED and not task.folder


@given(runs=_RUNS, remote=st.booleans())
def test_packing_keeps_every_entry_once_in_order_within_the_limits(
    runs: list[tuple[str, int]], remote: bool
):
    kinds = [kind for kind, repeat in runs for _ in range(repeat)]
    page = [_entry(place, kind) for place, kind in enumerate(kinds)]
    packed = pack(page, TREE, SOURCE, remote=remote)
    assert _flatten(packed) == page
    limit = CHUNK_OBJECTS
    if remote:  # few enough a chunk that the page's small objects spread over REMOTE_SPREAD
        spread = -(-sum(1 for task in page if _small(task)) // REMOTE_SPREAD)
        limit = min(REMOTE_CHUNK_OBJECTS, max(2, spread))
    for item in packed:
        if not isinstance(item, PlannedChunk):
            continue
        assert 2 <= item.count <= limit
        assert item.size <= CHUNK_BYTES
        after = item.first + item.count
        if after < len(page) and _small(page[after]):  # closed only when it was full
            size = page[after].size or 0
            assert item.count == limit or item.size + size > CHUNK_BYTES
    packed_places = {
        place
        for item in packed
        if isinstance(item, PlannedChunk)
        for place in range(item.first, item.first + item.count)
    }
    for place, task in enumerate(page):
        if _small(task) and place not in packed_places and place + 1 < len(page):
            assert not _small(page[place + 1]), "a small object alone had a neighbour to join"
