"""What a lease hands out, made from the rows it activated: leased tasks with their options
within their channel's bandwidth, and the chunk lists of the carriers among them."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import orjson
from sqlalchemy import Connection, bindparam, select

from ferry.domain.dispatch import Pair
from ferry.domain.locations import Location, split_location
from ferry.domain.transfers import TransferOptions
from ferry.store import tables as t
from ferry.store.abc import CarriedChunk, LeasedTask

if TYPE_CHECKING:
    from ferry.store.sql_dispatch import _Room


class LeasedRow(NamedTuple):
    """A task just leased, as a plain tuple: a field of a ``Row`` read by name costs fifty
    times one of a tuple, and a batch of a thousand spent more time there than in its update."""

    id: int
    transfer_id: str
    run: int
    scope: str
    priority: int
    source_site: str
    destination_site: str
    source: str
    destination: str
    size: int | None
    attempts: int
    folder: bool
    origin: int | None  # a carrier's chunk list
    members: list[int] | None
    replicas: str | None  # a JSON list of the other places its source may be read from


def leased_tasks(
    rows: list[LeasedRow],
    lease: str,
    options_of: OptionsOf,
    weights: dict[str, int],
    lists: dict[tuple[str, int, int], str],
) -> list[LeasedTask]:
    """The tasks of ``rows``, unpacked by position; a carrier with its chunk list."""
    return [
        LeasedTask(
            id=task_id,
            lease=lease,
            transfer_id=transfer_id,
            run=run,
            source=split_location(source),
            destination=split_location(destination),
            size=size,
            attempt=attempts,
            options=options_of[transfer_id, source_site, destination_site],
            scope=scope,
            priority=priority,
            weight=weights.get(scope, 1),
            folder=folder,
            chunk=None
            if origin is None
            else CarriedChunk(origin, lists[transfer_id, run, origin], members),
            replicas=_replicas(replicas),
            throttled=options_of.throttled(source_site, destination_site),
        )
        for (
            task_id,
            transfer_id,
            run,
            scope,
            priority,
            source_site,
            destination_site,
            source,
            destination,
            size,
            attempts,
            folder,
            origin,
            members,
            replicas,
        ) in rows
    ]


def _replicas(stored: str | None) -> tuple[Location, ...]:
    """A task's replicas from its row (locations Ferry wrote: split, not parsed again)."""
    return () if stored is None else tuple(map(split_location, orjson.loads(stored)))


# The chunk lists of a lease's carriers of one run: read by their key, sent as stored.
_LISTS = select(t.chunks.c.first, t.chunks.c.objects).where(
    (t.chunks.c.transfer_id == bindparam("transfer"))
    & (t.chunks.c.run == bindparam("run"))
    & t.chunks.c.first.in_(bindparam("firsts", expanding=True))
)


def chunk_lists(conn: Connection, rows: list[LeasedRow]) -> dict[tuple[str, int, int], str]:
    """The stored list of each carrier of ``rows``, by (transfer, run, first)."""
    firsts: dict[tuple[str, int], set[int]] = defaultdict(set)
    for row in rows:
        if row.origin is not None:
            firsts[row.transfer_id, row.run].add(row.origin)
    lists = {}
    for (transfer_id, run), of_run in firsts.items():
        parameters = {"transfer": transfer_id, "run": run, "firsts": sorted(of_run)}
        for first, objects in conn.execute(_LISTS, parameters):
            lists[transfer_id, run, first] = objects
    return lists


class OptionsOf(dict[tuple[str, str, str], TransferOptions]):
    """The options of each (transfer, source site, destination site) of a lease batch: their
    transfer's, the bandwidth no more than their part of their channel's."""

    def __init__(
        self, options: dict[str, TransferOptions], room: _Room, rows: list[LeasedRow]
    ) -> None:
        super().__init__()
        self.options = options
        self.room = room
        pairs = Counter((r.source_site, r.destination_site) for r in rows)
        self.leased: Counter[Pair | None] = Counter()
        for (source_site, destination_site), n in pairs.items():
            self.leased[room.channel_key(source_site, destination_site)] += n

    def throttled(self, source_site: str, destination_site: str) -> bool:
        """Whether a task of the pair is copied through a throttle: its channel shares a
        bandwidth, even one its timetable leaves unlimited now."""
        channel = self.room.channels.resolve(source_site, destination_site)
        return channel is not None and channel.shares_bandwidth

    def __missing__(self, key: tuple[str, str, str]) -> TransferOptions:
        transfer_id, source_site, destination_site = key
        options = _within_channel(
            self.options[transfer_id], self.room, source_site, destination_site, self.leased
        )
        self[key] = options
        return options


def _within_channel(
    options: TransferOptions,
    room: _Room,
    source_site: str,
    destination_site: str,
    leased: Counter[Pair | None],
) -> TransferOptions:
    """The task's bandwidth, no more than its part of its channel's."""
    channel = room.channels.resolve(source_site, destination_site)
    if channel is None or not channel.shares_bandwidth:
        return options
    active = room.active[channel.key] + leased[channel.key]
    share = channel.share_of_bandwidth(active, room.now)
    if share is None or (options.bandwidth is not None and options.bandwidth <= share):
        return options
    return replace(options, bandwidth=share)
