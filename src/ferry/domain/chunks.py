"""Small objects travel in chunks: which objects are small, and how a page of a listing is
packed (docs/small-files.md, §3 "Expansion")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ferry.domain.locations import Location
from ferry.domain.states import TaskState
from ferry.domain.transfers import PlannedTask, TransferKind, TransferSpec

SMALL_OBJECT = 256 * 1024
CHUNK_OBJECTS = 500
CHUNK_BYTES = 32 * 1024 * 1024
# Between remote storages a chunk is smaller, so that a tree's latency spreads over the
# agents' slots instead of waiting in one slot's queue: at most 64 objects, and few enough
# that a page's small objects make at least REMOTE_SPREAD chunks (a chunk's objects are copied
# one after the other, so 48 objects of a slow link in one chunk would take one slot 48 turns).
REMOTE_CHUNK_OBJECTS = 64
REMOTE_SPREAD = 16


def is_small(size: int | None, *, unzip: bool, bandwidth: int | None) -> bool:
    """Whether copying an object is short work for the CPU: a known size of at most
    ``SMALL_OBJECT``, neither unpacked nor held to a bandwidth (a throttled copy sleeps on
    its rate, and would hold up the objects copied with it)."""
    return size is not None and size <= SMALL_OBJECT and not unzip and bandwidth is None


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    """Consecutive small objects of one listing page, to travel as one task.

    ``first`` is the place of its first object in the page, counted from 0: its run-wide
    number is the run's next number when the page is inserted plus ``first``. ``objects``
    are ``(relative path, size)`` in listing order, relative to both roots.
    """

    source: Location  # the tree's source root
    destination: Location  # the transfer's destination folder
    first: int
    objects: tuple[tuple[str, int], ...]

    @property
    def count(self) -> int:
        return len(self.objects)

    @property
    def size(self) -> int:
        return sum(size for _, size in self.objects)


def pack(
    page: Sequence[PlannedTask], spec: TransferSpec, source: Location, *, remote: bool
) -> list[PlannedTask | PlannedChunk]:
    """The tasks of one page of ``source``'s listing, in listing order: consecutive small
    objects packed into chunks, every other entry a single task.

    A chunk closes at ``CHUNK_OBJECTS`` objects (when either storage is ``remote``,
    ``REMOTE_CHUNK_OBJECTS``, or fewer so that the page makes ``REMOTE_SPREAD`` chunks) or
    before it would exceed ``CHUNK_BYTES``, at any entry that is
    not small, and at the end of the page. A chunk that would hold one object is that
    object's single task instead: one row, where a chunk would cost a carrier and a list.
    Entries keep their places, so numbering the result in order numbers the page in order.
    """
    if spec.kind is not TransferKind.TREE:
        return list(page)
    entries = [_small_entry(task, spec, source) for task in page]  # once: the hot path's cost
    limit = CHUNK_OBJECTS
    if remote:
        small = sum(1 for entry in entries if entry is not None)
        limit = min(REMOTE_CHUNK_OBJECTS, max(2, -(-small // REMOTE_SPREAD)))
    packed: list[PlannedTask | PlannedChunk] = []
    objects: list[tuple[str, int]] = []  # the open chunk's, from the page's entry ``first``
    first = size = 0
    for place, (task, entry) in enumerate(zip(page, entries, strict=True)):
        if objects and (entry is None or len(objects) == limit or size + entry[1] > CHUNK_BYTES):
            packed.append(_closed(page, first, objects, source, spec.destination))
            objects, size = [], 0
        if entry is None:
            packed.append(task)
            continue
        if not objects:
            first = place
        objects.append(entry)
        size += entry[1]
    if objects:
        packed.append(_closed(page, first, objects, source, spec.destination))
    return packed


def _small_entry(task: PlannedTask, spec: TransferSpec, source: Location) -> tuple[str, int] | None:
    """``(relative path, size)`` of a plain file of ``source``'s listing that is small in
    ``spec``; None for anything else: a folder, a skipped link, an error, a refusal, an
    unknown size, or a path that is not the same below both roots."""
    options = spec.options
    if task.state is not TaskState.QUEUED or task.folder or task.error is not None:
        return None
    size = task.size
    if size is None or not is_small(size, unzip=options.unzip, bandwidth=options.bandwidth):
        return None
    relative = _below(source, task.source)
    if relative is None or spec.destination.child(relative) != task.destination:
        return None
    return relative, size


def _below(root: Location, location: Location) -> str | None:
    """The path of ``location`` relative to ``root``; None when it is not below it."""
    if location.storage != root.storage:
        return None
    if not root.path:
        return location.path or None
    prefix = root.path + "/"
    return location.path[len(prefix) :] if location.path.startswith(prefix) else None


def _closed(
    page: Sequence[PlannedTask],
    first: int,
    objects: list[tuple[str, int]],
    source: Location,
    destination: Location,
) -> PlannedTask | PlannedChunk:
    """The chunk of ``objects`` from ``first``; the page's own entry when it is alone."""
    if len(objects) == 1:
        return page[first]
    return PlannedChunk(source, destination, first, tuple(objects))
