"""Dispatch in SQL: channels, scopes and the lease (FTS's allocate step, at lease time)."""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, insert, literal_column, select, update

from ferry.domain.channels import Channel, ChannelMap, ChannelState
from ferry.domain.dispatch import FairDispatcher, Pair, Queued, QueueKey
from ferry.domain.optimizer import Decision, OpenWindow, Search
from ferry.domain.sites import CLIENT_SITE
from ferry.domain.states import AgentState, TaskState
from ferry.domain.timetable import Timetable
from ferry.domain.transfers import Scope, TransferOptions
from ferry.errors import NotFound
from ferry.store import tables as t
from ferry.store.abc import LeasedTask, Shares
from ferry.store.sql_base import SqlBase, Unindexed, all_rows, scalar_of
from ferry.store.sql_leased import (
    LeasedRow,
    OptionsOf,
    chunk_lists,
    leased_tasks,
)


def channel_from_row(row: Any) -> Channel:
    optimizer = row.optimizer or {}
    search, decision = optimizer.get("search"), optimizer.get("decision")
    window = optimizer.get("window")
    return Channel(
        source_site=row.source_site,
        destination_site=row.destination_site,
        max_active=row.max_active,
        bandwidth=row.bandwidth,
        state=ChannelState(row.state),
        timetable=Timetable.parse(row.bandwidth_timetable) if row.bandwidth_timetable else None,
        timezone=row.timezone,
        optimize=bool(row.optimize),
        min_active=row.min_active,
        search=Search.from_json(search) if search else None,
        decision=Decision(**decision) if decision else None,
        window=OpenWindow.from_json(window) if window else None,
    )


def optimizer_json(
    search: Search, decision: Decision | None, window: OpenWindow | None
) -> dict[str, Any]:
    """A channel's ``optimizer`` column: its search, last decision and open window."""
    return {
        "search": search.to_json(),
        "decision": decision.to_json() if decision else None,
        "window": window.to_json() if window else None,
    }


def channel_row(channel: Channel) -> dict[str, Any]:
    """The columns of ``channel``'s row, but ``updated_at``."""
    optimizer = None
    if channel.search is not None:
        optimizer = optimizer_json(channel.search, channel.decision, channel.window)
    return {
        "source_site": channel.source_site,
        "destination_site": channel.destination_site,
        "max_active": channel.max_active,
        "bandwidth": channel.bandwidth,
        "state": channel.state.value,
        "bandwidth_timetable": channel.timetable.text if channel.timetable else None,
        "timezone": channel.timezone,
        "optimize": channel.optimize,
        "min_active": channel.min_active,
        "optimizer": optimizer,
    }


# The protocol from which an agent takes chunks (``ferry.api.protocol.PROTOCOL``'s first value).
CHUNKS_PROTOCOL = 2


class _Room:
    """What each channel may still start now: its limit (``max_active``, or the optimizer's
    when it optimizes) minus the tasks it has
    active across every agent; nothing while it drains or is stopped."""

    def __init__(self, channels: ChannelMap, active: Mapping[Pair, int], now: datetime) -> None:
        self.channels = channels
        self.now = now  # the time its channels' bandwidth timetables are read at
        self.active: Counter[Pair] = Counter()
        for (source, destination), n in active.items():
            channel = channels.resolve(source, destination)
            if channel is not None:
                self.active[channel.key] += n
        self.left: dict[Pair, int] = {}
        for channel in channels:
            if channel.state is not ChannelState.ACTIVE:
                self.left[channel.key] = 0
            elif channel.limit is not None:
                self.left[channel.key] = max(0, channel.limit - self.active[channel.key])

    def channel_key(self, source_site: str, destination_site: str) -> Pair | None:
        channel = self.channels.resolve(source_site, destination_site)
        return channel.key if channel is not None else None

    def governing(self, source_site: str, destination_site: str) -> Pair | None:
        """The key of the channel that limits this pair, or None when nothing does."""
        channel = self.channels.resolve(source_site, destination_site)
        return channel.key if channel is not None and channel.key in self.left else None


def _counts_active(channels: ChannelMap) -> bool:
    """Whether a lease needs the active tasks counted: only a channel that limits them or
    shares a bandwidth among them does (the count reads every ACTIVE task's index entry)."""
    return any(
        channel.state is ChannelState.ACTIVE
        and (channel.limit is not None or channel.shares_bandwidth)
        for channel in channels
    )


class DispatchMixin(SqlBase):
    _dispatcher: FairDispatcher | None = None

    @property
    def dispatcher(self) -> FairDispatcher:
        if self._dispatcher is None:
            self._dispatcher = FairDispatcher()
        return self._dispatcher

    # --- channels and scopes ------------------------------------------------------------------
    async def put_channel(self, channel: Channel) -> Channel:
        values = {**channel_row(channel), "updated_at": self.clock()}
        key = (t.channels.c.source_site == channel.source_site) & (
            t.channels.c.destination_site == channel.destination_site
        )
        async with self._tx() as conn:
            changed = await conn.execute(update(t.channels).where(key).values(**values))
            if changed.rowcount == 0:
                await conn.execute(insert(t.channels).values(**values))
        return channel

    async def list_channels(self) -> list[Channel]:
        return list(await self._reading(self._channels))

    async def delete_channel(self, source_site: str, destination_site: str) -> None:
        async with self._tx() as conn:
            gone = await conn.execute(
                delete(t.channels).where(
                    (t.channels.c.source_site == source_site)
                    & (t.channels.c.destination_site == destination_site)
                )
            )
        if gone.rowcount == 0:
            raise NotFound(f"channel {source_site}→{destination_site} not found")

    async def active_by_channel(self) -> dict[Pair, int]:
        room = await self._reading(
            lambda conn: _Room(self._channels(conn), self._active_by_pair(conn), self.clock())
        )
        return dict(room.active)

    def _channels(self, conn: Connection) -> ChannelMap:
        rows = conn.execute(select(t.channels)).all()
        return ChannelMap(channel_from_row(r) for r in rows)

    async def put_scope(self, scope: Scope) -> Scope:
        async with self._tx() as conn:
            changed = await conn.execute(
                update(t.scopes).where(t.scopes.c.name == scope.name).values(weight=scope.weight)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(t.scopes).values(
                        name=scope.name, weight=scope.weight, created_at=self.clock()
                    )
                )
        return scope

    async def list_scopes(self) -> list[Scope]:
        rows = await self._reading(all_rows, select(t.scopes).order_by(t.scopes.c.name))
        return [Scope(r.name, r.weight) for r in rows]

    # --- the lease ----------------------------------------------------------------------------
    async def lease_tasks(self, agent_id: str, *, limit: int, ttl: timedelta) -> list[LeasedTask]:
        # Nothing queued at all, seen on a reader's thread: no need to wait for the writer's.
        # Every report wakes the agents' waiting leases, and at a run's end those found
        # nothing, each holding the writer up while the run's close waited behind.
        if await self._reading(scalar_of, _ANY_QUEUED) is None:
            return []
        lease = secrets.token_hex(16)
        leased = await self._write(self._lease, agent_id, limit, ttl, lease)
        if leased is None:
            return []
        if self.observe_lease_lock is not None:  # its commit included, as seen from here
            self.observe_lease_lock(time.perf_counter() - leased.locked_at)
        # Made outside the transaction: the writer's lock is not held while they are built.
        rows, picked, options, room, weights, lists, _ = leased
        order = {task_id: n for n, task_id in enumerate(picked)}
        rows.sort(key=lambda r: order[r.id])
        return leased_tasks(rows, lease, OptionsOf(options, room, rows), weights, lists)

    def _lease(
        self, conn: Connection, agent_id: str, limit: int, ttl: timedelta, lease: str
    ) -> _Leased | None:
        self._serialize(conn, "ferry.lease")
        locked_at = time.perf_counter()
        may, takes_chunks = self._may_lease(conn, agent_id)
        if not may:
            return None
        channels = self._channels(conn)
        active = self._active_by_pair(conn) if _counts_active(channels) else {}
        room = _Room(channels, active, self.clock())
        heads, channel_of, carried = self._queue_heads(conn, room, limit, takes_chunks)
        limit = self._fair_share(conn, agent_id, heads, carried, limit)
        weights = {r.name: r.weight for r in conn.execute(select(t.scopes)).all()}
        picked = self.dispatcher.pick(heads, channel_of, dict(room.left), weights, limit)
        if not picked:
            return None
        rows = self._activate(conn, picked, agent_id, lease, ttl)
        options = self._options_of(conn, {r.transfer_id for r in rows})
        # Every carrier's list, a retry carrier of one object too (not among ``carried``).
        lists = chunk_lists(conn, rows)
        return _Leased(rows, picked, options, room, weights, lists, locked_at)

    def _fair_share(
        self,
        conn: Connection,
        agent_id: str,
        heads: dict[QueueKey, list[Queued]],
        carried: dict[int, int],
        limit: int,
    ) -> int:
        """How many objects this lease may take. While more may start than the agent asked
        for, all it asked; the tail of the queues (less than that) is shared with the live
        agents that hold nothing, so that work starts on every free agent (the first agent to
        ask took a whole tree of 40 objects while the other idled). A carrier's objects
        (``carried``) count each."""
        available = sum(len(queued) for queued in heads.values())
        available += sum(carried.values()) - len(carried)
        if available >= limit:
            return limit
        a, c = t.agents.c, t.tasks.c
        holding = (
            select(c.id)
            .where(t.task_state_is(TaskState.ACTIVE.value) & (c.lease_agent == a.id))
            .exists()
        )
        idle = conn.execute(
            select(func.count())
            .select_from(t.agents)
            .where(
                a.state.in_([AgentState.REGISTERED.value, AgentState.ALIVE.value])
                & (a.id != agent_id)
                & a.paused_at.is_(None)
                & ~holding
            )
        ).scalar()
        return max(1, math.ceil(available / (1 + (idle or 0))))

    async def bandwidth_shares(self, agent_id: str, held: list[int]) -> Shares:
        """The bandwidth each of the agent's ``held`` tasks may use now: its part of its
        channel's (by the tasks active in the channel now, at the rate its timetable gives
        now), and no more than its transfer's own. Only tasks under a channel that shares a
        bandwidth are in it."""
        if not held:
            return Shares({}, [], None)
        return await self._reading(self._shares, agent_id, held)

    def _shares(self, conn: Connection, agent_id: str, held: list[int]) -> Shares:
        channels = self._channels(conn)
        if not any(channel.shares_bandwidth for channel in channels):
            return Shares({}, [], None)
        now = self.clock()
        room = _Room(channels, self._active_by_pair(conn), now)
        c = t.tasks.c
        rows = conn.execute(
            select(c.id, c.transfer_id, c.source_site, c.destination_site).where(
                c.id.in_(held)
                & (c.lease_agent == agent_id)
                & t.task_state_is(TaskState.ACTIVE.value)
            )
        ).all()
        options = self._options_of(conn, {r.transfer_id for r in rows})
        shares = Shares({}, [], None)
        timed: set[Pair] = set()  # channels whose next change is counted (once each)
        for row in rows:
            channel = channels.resolve(row.source_site, row.destination_site)
            if channel is None or not channel.shares_bandwidth:
                continue
            if channel.key not in timed:
                timed.add(channel.key)
                shares.changes_in(channel.seconds_to_change(now))
            share = channel.share_of_bandwidth(room.active[channel.key], now)
            own = options[row.transfer_id].bandwidth
            if share is None and own is None:
                shares.unlimited.append(row.id)
            else:
                shares.rates[row.id] = min(r for r in (own, share) if r is not None)
        return shares

    def _may_lease(self, conn: Connection, agent_id: str) -> tuple[bool, bool]:
        """Whether the agent may lease (a RETIRED agent, which said it leaves, gets nothing
        until it registers again; a paused one nothing until it is resumed), and whether it
        takes chunks (it speaks protocol 2)."""
        a = t.agents.c
        row = conn.execute(
            select(a.state, a.capabilities, a.paused_at).where(a.id == agent_id)
        ).first()
        if row is None:
            return True, False
        protocol = (row.capabilities or {}).get("protocol", 1)
        takes_chunks = isinstance(protocol, int) and protocol >= CHUNKS_PROTOCOL
        may = row.state != AgentState.RETIRED.value and row.paused_at is None
        return may, takes_chunks

    def _active_by_pair(self, conn: Connection) -> dict[Pair, int]:
        c = t.tasks.c
        rows = conn.execute(
            select(c.source_site, c.destination_site, func.count())
            .where(t.task_state_is(TaskState.ACTIVE.value))
            .group_by(c.source_site, c.destination_site)
        ).all()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def _queue_heads(
        self, conn: Connection, room: _Room, limit: int, takes_chunks: bool
    ) -> tuple[dict[QueueKey, list[Queued]], dict[QueueKey, Pair | None], dict[int, int]]:
        """The first tasks of every queue that may start now, in dispatch order: each through
        the queue index, never more than its channel's room or the limit; and the objects of
        each carrier among them (none unless the agent ``takes_chunks``)."""
        c = t.tasks.c
        heads: dict[QueueKey, list[Queued]] = {}
        channel_of: dict[QueueKey, Pair | None] = {}
        carried: dict[int, int] = {}
        singles_only = [] if takes_chunks else [Unindexed(c.origin).is_(None)]
        for q in conn.execute(select(t.queues)).all():
            if CLIENT_SITE in (q.source_site, q.destination_site):
                continue  # a passive transfer's objects: the client sends or fetches them
            key: QueueKey = (q.scope, q.source_site, q.destination_site)
            channel_of[key] = governing = room.governing(q.source_site, q.destination_site)
            wanted = limit if governing is None else min(limit, room.left[governing])
            if wanted <= 0:
                continue
            rows = conn.execute(
                select(c.id, c.priority, c.objects)
                .where(
                    t.task_state_is(TaskState.QUEUED.value),  # the queue index's condition
                    c.scope == q.scope,
                    c.source_site == q.source_site,
                    c.destination_site == q.destination_site,
                    ~c.cancel_requested,
                    *singles_only,
                )
                .order_by(c.priority.desc(), c.id)
                .limit(wanted)
            ).all()
            if rows:
                heads[key] = [Queued(*row) for row in rows]
                carried.update((row[0], row[2]) for row in rows if row[2] != 1)
        return heads, channel_of, carried

    def _activate(
        self, conn: Connection, ids: list[int], agent_id: str, lease: str, ttl: timedelta
    ) -> list[LeasedRow]:
        now = self.clock()
        parameters = {
            "ids": ids,
            "agent": agent_id,
            "lease": lease,
            "now": now,
            "expires": now + ttl,
        }
        return list(map(LeasedRow._make, conn.execute(_ACTIVATE, parameters).fetchall()))

    def _options_of(self, conn: Connection, ids: set[str]) -> dict[str, TransferOptions]:
        if not ids:
            return {}
        rows = conn.execute(_OPTIONS_OF, {"ids": list(ids)}).all()
        return {r[0]: TransferOptions.from_json(r[1] or {}) for r in rows}


# One task waiting to be leased, if any (through the queue's index, of QUEUED tasks only).
_ANY_QUEUED = select(t.tasks.c.id).where(t.task_state_is(TaskState.QUEUED.value)).limit(1)

# The options of the transfers of a lease, read out of their specs by the database: a file
# transfer's spec lists every source, megabytes for a hundred thousand, parsed at every lease.
_OPTIONS_OF = select(t.transfers.c.id, t.transfers.c.spec["options"]).where(
    t.transfers.c.id.in_(bindparam("ids", expanding=True))
)


class _Leased(NamedTuple):
    """What a lease's transaction read and changed, made into leased tasks after it."""

    rows: list[LeasedRow]
    picked: list[int]  # the dispatch order
    options: dict[str, TransferOptions]
    room: _Room
    weights: dict[str, int]
    lists: dict[tuple[str, int, int], str]  # each carrier's chunk list, as stored
    locked_at: float  # time.perf_counter() when the lease lock was taken


# The lease itself, made once: the batch's ids and the lease's values are given when it runs.
# Each id is found by the primary key; the state is checked on the row found.
_ACTIVATE = (
    update(t.tasks)
    .where(
        t.tasks.c.id.in_(bindparam("ids", expanding=True))
        & (Unindexed(t.tasks.c.state) == literal_column("'QUEUED'"))
    )
    .values(
        state=TaskState.ACTIVE.value,
        lease_agent=bindparam("agent"),
        lease_token=bindparam("lease"),
        leased_at=bindparam("now"),
        lease_expires_at=bindparam("expires"),
        attempts=t.tasks.c.attempts + 1,
    )
    .returning(*(t.tasks.c[name] for name in LeasedRow._fields))
)
