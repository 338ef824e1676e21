"""The registry loop (gCube's information system; FTS's CheckIS, HeartBeat, CleanSDCache):
agents whose heartbeats stopped are LOST and their work comes back at once; every storage is
health-checked (often during the first minute after start, then at a calmer pace); cached
lookups expire."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ferry.daemon.logs import REDACTOR
from ferry.domain.events import AgentLost
from ferry.domain.locations import is_endpoint
from ferry.domain.transfers import Storage, endpoint_storage
from ferry.engine.storages import check_health, check_url, looks_secret, secret_values
from ferry.errors import InvalidRequest
from ferry.scheduler.loop import Loop, Wakeups, system_clock
from ferry.store.abc import Store

log = logging.getLogger("ferry.scheduler")

HEALTH_CHECK_TIMEOUT_S = 30.0
HEALTH_CHECKS_AT_ONCE = 8


@dataclass(frozen=True, slots=True)
class RegistryTimings:
    lost_after: timedelta = timedelta(seconds=30)  # no heartbeat for that long: LOST
    health_fast: timedelta = timedelta(seconds=10)  # health checks during the first minute
    health_slow: timedelta = timedelta(seconds=60)  # and after it
    fast_for: timedelta = timedelta(minutes=1)


class StorageCache:
    """Storages as the lease hands them to agents (credentials decrypted once, not per call),
    each kept for ``ttl``; changed or deleted storages are dropped at once by this server."""

    def __init__(self, store: Store, ttl: timedelta = timedelta(seconds=30)) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, tuple[Storage, datetime]] = {}

    async def get(self, name: str, now: datetime) -> Storage:
        if is_endpoint(name):  # allowed when its transfer was accepted: see EndpointPolicy
            return endpoint_storage(name)
        cached = self._entries.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        storage = await self.store.get_storage(name)
        for secret in secret_values(storage.backend_options()):
            REDACTOR.add(secret)  # out of this server's log lines and listing errors
        self._entries[name] = (storage, now + self.ttl)
        return storage

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)

    def expire(self, now: datetime) -> int:
        stale = [name for name, (_s, until) in self._entries.items() if until <= now]
        for name in stale:
            del self._entries[name]
        return len(stale)


class RegistryLoop(Loop):
    """Agents silent for ``lost_after`` become LOST; storages are health-checked; cached
    storages expire.

    An agent's heartbeats reach the database through a server: while the database is away,
    none is recorded though every agent goes on sending them. So once a pass has found it
    away, no agent is marked LOST until the database has taken a write again and then
    ``lost_after`` has passed (every live agent has been heard by then), as the lease reaper
    does with leases; without that, a database away for ``lost_after`` made every agent LOST
    when it came back, and each object they held was requeued and copied a second time. A
    pass that fails for the database's state, here or in taking the loop's lock, says so
    through ``found_database_away``."""

    name = "registry"
    singleton = True
    interval = 2.0

    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        clock: Callable[[], datetime] = system_clock,
        timings: RegistryTimings | None = None,
        cache: StorageCache | None = None,
    ) -> None:
        super().__init__(store, wakeups, clock)
        self.timings = timings or RegistryTimings()
        self.cache = cache
        self.started_at = clock()
        self.next_health_check = self.started_at
        self._away = False  # a pass found the database away, and it has not been seen back
        self._quiet_until: datetime | None = None

    def found_database_away(self) -> None:
        self._away = True

    async def run_once(self) -> None:
        now = self.clock()
        if await self._heartbeats_recorded(now):
            await self.mark_silent_agents_lost(now)
        await self.close_expired_passive_transfers(now)
        if now >= self.next_health_check:
            await self.check_storages()
            self.next_health_check = self.clock() + self._health_interval(now)
        if self.cache is not None:
            self.cache.expire(now)

    async def _heartbeats_recorded(self, now: datetime) -> bool:
        """Whether the agents' silence can be told from their heartbeats' records now: not
        until ``lost_after`` after the database was seen back."""
        if self._away:
            await self.store.check_writable()
            self._away, self._quiet_until = False, now + self.timings.lost_after
            log.info(
                "the database is back: no agent is marked LOST for %.0f s, while they are heard",
                self.timings.lost_after.total_seconds(),
            )
            return False
        return self._quiet_until is None or now >= self._quiet_until

    def _health_interval(self, now: datetime) -> timedelta:
        young = now - self.started_at < self.timings.fast_for
        return self.timings.health_fast if young else self.timings.health_slow

    async def mark_silent_agents_lost(self, now: datetime) -> None:
        silent_for = self.timings.lost_after
        since = now - silent_for
        for agent in await self.store.silent_agents(since):
            why = f"no heartbeat for {silent_for.total_seconds():.0f} s"
            requeued = await self.store.mark_agent_lost(agent.id, why, silent_since=since)
            log.warning(
                "agent %s (%s) LOST: %s; %d tasks requeued", agent.name, agent.id, why, requeued
            )
            self.wakeups.events.publish(
                AgentLost(agent=agent.id, name=agent.name, reason=why, requeued=requeued)
            )
            if requeued:
                self.wakeups.work_queued()
                self.wakeups.objects_ended()

    async def close_expired_passive_transfers(self, now: datetime) -> None:
        """A push or pull whose capability expired ends: what the client did not move fails."""
        for transfer_id in await self.store.expired_passive_transfers(now):
            why = "the client did not move it before the transfer's capability expired"
            failed = await self.store.close_passive_transfer(transfer_id, why)
            log.warning("passive transfer %s expired; %d objects not moved", transfer_id, failed)
            self.wakeups.objects_ended()

    async def check_storages(self) -> None:
        """Every storage, a few at a time, each bounded by a timeout."""
        gate = asyncio.Semaphore(HEALTH_CHECKS_AT_ONCE)

        async def check(storage: Storage) -> None:
            async with gate:
                health = await probe(storage)
            await self.store.record_health(storage.name, health)
            if not health["reachable"] or health["error"]:
                log.warning("storage %s unhealthy: %s", storage.name, health["error"])

        await asyncio.gather(*(check(s) for s in await self.store.list_storages()))


async def probe(storage: Storage, timeout_s: float = HEALTH_CHECK_TIMEOUT_S) -> dict[str, Any]:
    """The storage's health, within ``timeout_s`` (a backend that hangs is unreachable)."""
    kwargs = storage.backend_options()
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(check_health, storage.name, storage.url, kwargs), timeout_s
        )
    except TimeoutError:
        return {
            "reachable": False,
            "latency_ms": None,
            "checked_at": datetime.now(UTC).isoformat(),
            "error": f"no answer within {timeout_s:.0f} s",
        }


def check_backend(url: str, options: Iterable[str]) -> None:
    """A storage's ``url`` is one a backend takes, and none of its ``options`` (by name) is a
    credential: options are shown and logged, credentials are kept encrypted."""
    check_url(url)
    if secret := sorted(name for name in options if looks_secret(name)):
        raise InvalidRequest(
            f"put {', '.join(secret)} in credentials: options are shown and logged"
        )
