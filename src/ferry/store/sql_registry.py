"""Registry and security in SQL: storages, clients, tokens, agents and their one-time secrets."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from ferry.domain.states import AgentState, TaskState, TransferStatus
from ferry.domain.transfers import Agent, Role, Storage
from ferry.errors import (
    AgentNotFound,
    Conflict,
    Forbidden,
    SecretKeyError,
    SecretRejected,
    StorageNotFound,
    StoreUnavailable,
    Unauthenticated,
)
from ferry.store import tables as t
from ferry.store.abc import AgentStatistics, Principal
from ferry.store.sql_base import SqlBase, Unindexed, all_rows, first_row, hash_secret
from ferry.store.sql_bulk import execute_many
from ferry.store.sql_expiry import ExpiryMixin
from ferry.store.sql_pauses import park_paused, stopped_by_pause
from ferry.store.sql_rows import agent_from_row, storage_from_row
from ferry.store.sql_tasks import _RELEASE

ADMIN_CLIENT = "admin"
THROUGHPUT_WINDOW = timedelta(minutes=1)


# Bytes an active task has moved, as its agent reports them with each heartbeat.
_PROGRESS = (
    update(t.tasks)
    .where((t.tasks.c.id == bindparam("b_id")) & t.task_state_is(TaskState.ACTIVE.value))
    .values(bytes_done=bindparam("b_bytes"))
)


def _storages_named(spec: dict[str, Any]) -> set[str]:
    locations = [*spec.get("sources", []), spec.get("destination", "")]
    return {str(location).partition(":")[0] for location in locations}


def new_token() -> str:
    return secrets.token_urlsafe(32)


_USE = timedelta(minutes=1)  # how often a token's last use is written
# A token with its user's scopes (an agent's has none).
_TOKEN_OF = select(t.tokens, t.clients.c.scopes).select_from(
    t.tokens.outerjoin(t.clients, t.tokens.c.client == t.clients.c.name)
)


def _refuse_expired(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated(f"token expired at {expires_at:%Y-%m-%d %H:%M:%S} UTC")


class RegistryMixin(ExpiryMixin, SqlBase):
    async def bootstrap(self) -> str | None:
        now = self.clock()
        async with self._tx() as conn:
            if (
                await conn.execute(select(t.scopes.c.name).where(t.scopes.c.name == "default"))
            ).first() is None:
                await conn.execute(
                    insert(t.scopes).values(name="default", weight=1, created_at=now)
                )
            if (
                await conn.execute(select(t.clients.c.name).where(t.clients.c.name == ADMIN_CLIENT))
            ).first():
                return None
            await conn.execute(
                insert(t.clients).values(
                    name=ADMIN_CLIENT,
                    role=Role.ADMINISTRATOR.value,
                    scopes=["default"],
                    created_at=now,
                )
            )
            token = new_token()
            await self._insert_admin_token(conn, token)
            return token

    async def check_writable(self) -> None:
        scope = t.scopes.c
        await self._write(
            lambda conn: conn.execute(
                update(t.scopes).where(scope.name == "default").values(weight=scope.weight)
            )
        )

    async def issue_admin_token(self) -> str:
        token = new_token()
        async with self._tx() as conn:
            await self._insert_admin_token(conn, token)
        return token

    async def rotate_admin_token(self) -> str:
        """A new administrator token; the old ones stop working."""
        token = new_token()
        async with self._tx_revoking() as conn:
            await conn.execute(delete(t.tokens).where(t.tokens.c.client == ADMIN_CLIENT))
            await self._insert_admin_token(conn, token)
        return token

    async def _insert_admin_token(self, conn: AsyncConnection, token: str) -> None:
        await conn.execute(
            insert(t.tokens).values(
                hash=hash_secret(token),
                role=Role.ADMINISTRATOR.value,
                client=ADMIN_CLIENT,
                created_at=self.clock(),
                prefix=token[:6],
            )
        )

    # --- storages -----------------------------------------------------------------------------
    async def put_storage(self, storage: Storage) -> bool:
        values = self._storage_values(storage)
        async with self._tx() as conn:
            changed = await conn.execute(
                update(t.storages).where(t.storages.c.name == storage.name).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(t.storages).values(name=storage.name, created_at=self.clock(), **values)
                )
        return changed.rowcount == 0

    async def add_storage(self, storage: Storage) -> None:
        values = self._storage_values(storage)
        async with self._tx() as conn:
            if await self._storage_exists(conn, storage.name):
                raise Conflict(
                    f"storage {storage.name!r} exists: replace it explicitly (--replace, PUT)"
                )
            await conn.execute(
                insert(t.storages).values(name=storage.name, created_at=self.clock(), **values)
            )

    async def replace_storage(self, storage: Storage) -> None:
        values = self._storage_values(storage)
        async with self._tx() as conn:
            await self._refuse_in_use(conn, storage.name, "replaced")
            await conn.execute(
                update(t.storages).where(t.storages.c.name == storage.name).values(**values)
            )

    def _storage_values(self, storage: Storage) -> dict[str, Any]:
        values: dict[str, Any] = {
            "url": storage.url,
            "site": storage.site,
            "options": storage.options,
            "credentials": self._sealed(storage),
        }
        if storage.health is not None:
            values["health"] = storage.health
        return values

    @staticmethod
    async def _storage_exists(conn: AsyncConnection, name: str) -> bool:
        found = await conn.execute(select(t.storages.c.name).where(t.storages.c.name == name))
        return found.first() is not None

    async def _refuse_in_use(self, conn: AsyncConnection, name: str, what: str) -> None:
        """``StorageNotFound``, or ``Conflict`` while a waiting or running transfer names it."""
        if not await self._storage_exists(conn, name):
            raise StorageNotFound(name)
        c = t.transfers.c
        live = (TransferStatus.STANDBY.value, TransferStatus.ONGOING.value)
        specs = (await conn.execute(select(c.id, c.spec).where(c.status.in_(live)))).all()
        users = [row.id for row in specs if name in _storages_named(row.spec)]
        if users:
            raise Conflict(
                f"storage {name!r} is used by {len(users)} waiting or running transfers"
                f" (e.g. {users[0]}): cancel them first, or it cannot be {what}"
            )

    def _sealed(self, storage: Storage) -> str | None:
        if not storage.credentials:
            return None
        if self.cipher is None:
            raise SecretKeyError("credentials cannot be stored: no secret key was given")
        return self.cipher.encrypt(storage.credentials.reveal())

    async def get_storage(self, name: str) -> Storage:
        row = await self._reading(first_row, select(t.storages).where(t.storages.c.name == name))
        if row is None:
            raise StorageNotFound(name)
        return storage_from_row(row, self.cipher)

    async def list_storages(self) -> list[Storage]:
        rows = await self._reading(all_rows, select(t.storages).order_by(t.storages.c.name))
        return [storage_from_row(r, self.cipher) for r in rows]

    async def record_health(self, name: str, health: dict[str, Any]) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(t.storages).where(t.storages.c.name == name).values(health=health)
            )

    async def delete_storage(self, name: str) -> None:
        """Remove a storage no waiting or running transfer names (``Conflict`` otherwise)."""
        async with self._tx() as conn:
            await self._refuse_in_use(conn, name, "removed")
            await conn.execute(delete(t.storage_grants).where(t.storage_grants.c.storage == name))
            await conn.execute(delete(t.storages).where(t.storages.c.name == name))

    # --- tokens and agents --------------------------------------------------------------------
    async def authenticate(self, token: str) -> Principal:
        """The token's principal, from memory when it was read less than a few seconds ago
        (``PrincipalCache``); changes made through this store forget them all at once."""
        digest = hash_secret(token)
        now = self.clock()
        if (known := self._principals.get(digest)) is not None:
            _refuse_expired(known.expires_at, now)
            return known
        generation = self._principals.generation
        row = await self._reading(first_row, _TOKEN_OF.where(t.tokens.c.hash == digest))
        if row is None:
            raise Unauthenticated("unknown or revoked token")
        _refuse_expired(row.expires_at, now)
        principal = Principal(
            name=row.client or row.agent_id,
            role=Role(row.role),
            agent_id=row.agent_id,
            expires_at=row.expires_at,
            scopes=tuple(row.scopes or ()),
        )
        self._principals.put(digest, principal, generation)
        if row.client is not None and (row.last_used_at is None or now - row.last_used_at > _USE):
            await self._note_token_use(digest, now)
        return principal

    async def _note_token_use(self, token_hash: str, now: datetime) -> None:
        """When a token was last used, to the minute (a write per request would cost more than
        the request)."""
        c = t.tokens.c
        stale = c.last_used_at.is_(None) | (c.last_used_at < now.replace(second=0, microsecond=0))
        try:
            async with self._tx() as conn:
                await conn.execute(
                    update(t.tokens).where((c.hash == token_hash) & stale).values(last_used_at=now)
                )
        except (OperationalError, StoreUnavailable):
            pass  # a request that only reads is not failed for its bookkeeping

    async def issue_agent_secret(self, agent_name: str, ttl: timedelta) -> str:
        secret = secrets.token_hex(32)  # 64 hex characters, like the transfer daemon's --id
        now = self.clock()
        async with self._tx() as conn:
            await conn.execute(
                insert(t.agent_secrets).values(
                    hash=hash_secret(secret),
                    agent_name=agent_name,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return secret

    async def register_agent(
        self,
        *,
        secret: str | None,
        principal: Principal | None,
        name: str,
        host: str,
        capabilities: dict[str, Any],
    ) -> tuple[Agent, str]:
        async with self._tx_revoking() as conn:  # the agent's previous token is revoked
            if secret is not None:
                await self._spend_secret(conn, secret, name)
            else:
                await self._check_registering_principal(conn, principal, name)
            agent_id = await self._upsert_agent(conn, name, host, capabilities)
            token = new_token()
            await conn.execute(delete(t.tokens).where(t.tokens.c.agent_id == agent_id))
            await conn.execute(
                insert(t.tokens).values(
                    hash=hash_secret(token),
                    role=Role.DAEMON.value,
                    agent_id=agent_id,
                    created_at=self.clock(),
                )
            )
            row = (await conn.execute(select(t.agents).where(t.agents.c.id == agent_id))).one()
        return agent_from_row(row), token

    async def _spend_secret(self, conn: AsyncConnection, secret: str, name: str) -> None:
        row = (
            await conn.execute(
                select(t.agent_secrets).where(t.agent_secrets.c.hash == hash_secret(secret))
            )
        ).first()
        if row is None:
            raise SecretRejected(name, "unknown secret")
        if row.used_at is not None:
            raise SecretRejected(name, "secret already used")
        if row.agent_name != name:
            raise SecretRejected(name, "secret was issued to another agent")
        if row.expires_at <= self.clock():
            raise SecretRejected(name, "secret expired")
        await conn.execute(
            update(t.agent_secrets)
            .where(t.agent_secrets.c.hash == row.hash)
            .values(used_at=self.clock())
        )

    async def _check_registering_principal(
        self, conn: AsyncConnection, principal: Principal | None, name: str
    ) -> None:
        if principal is None:
            raise Unauthenticated("registration needs a one-time secret or a token")
        if principal.role is Role.ADMINISTRATOR:
            return
        if principal.role is not Role.DAEMON or principal.agent_id is None:
            raise Forbidden(Role.DAEMON.value)
        row = (
            await conn.execute(select(t.agents.c.name).where(t.agents.c.id == principal.agent_id))
        ).one()
        if row.name != name:
            raise SecretRejected(name, "token belongs to another agent")

    async def _upsert_agent(
        self, conn: AsyncConnection, name: str, host: str, capabilities: dict[str, Any]
    ) -> str:
        now = self.clock()
        values = {
            "host": host,
            "state": AgentState.REGISTERED.value,
            "capabilities": capabilities,
            "registered_at": now,
            "last_heartbeat": now,
        }
        row = (await conn.execute(select(t.agents.c.id).where(t.agents.c.name == name))).first()
        if row is None:
            agent_id = str(uuid.uuid4())
            await conn.execute(insert(t.agents).values(id=agent_id, name=name, status={}, **values))
            return agent_id
        # The previous incarnation is gone: its work comes back now, not after a lease TTL.
        await conn.run_sync(
            self._requeue_leases, t.tasks.c.lease_agent == row.id, "agent re-registered"
        )
        await conn.execute(update(t.agents).where(t.agents.c.id == row.id).values(**values))
        return str(row.id)

    async def list_agents(self) -> list[Agent]:
        rows = await self._reading(all_rows, select(t.agents).order_by(t.agents.c.name))
        return [agent_from_row(r) for r in rows]

    async def agent_named(self, name: str) -> Agent | None:
        row = await self._reading(first_row, select(t.agents).where(t.agents.c.name == name))
        return agent_from_row(row) if row is not None else None

    async def get_agent(self, agent_id: str) -> Agent:
        row = await self._reading(first_row, select(t.agents).where(t.agents.c.id == agent_id))
        if row is None:
            raise AgentNotFound(agent_id)
        return agent_from_row(row)

    async def record_heartbeat(
        self,
        agent_id: str,
        status: dict[str, Any],
        ttl: timedelta,
        held: list[int],
        progress: dict[int, int] | None = None,
    ) -> list[int]:
        """Extend the leases the agent says it holds (a lease it never received is left to
        expire) and return those of its tasks it must stop: canceled, of a transfer paused
        with its copies stopped, or no longer its own."""
        now = self.clock()
        mine = (
            t.tasks.c.id.in_(held)
            & (t.tasks.c.lease_agent == agent_id)
            & t.task_state_is(TaskState.ACTIVE.value)
        )
        async with self._tx() as conn:
            await conn.execute(
                update(t.agents)
                .where(t.agents.c.id == agent_id)
                .where(t.agents.c.state != AgentState.RETIRED.value)
                .values(state=AgentState.ALIVE.value, last_heartbeat=now, status=status)
            )
            if not held:
                return []
            await conn.execute(update(t.tasks).where(mine).values(lease_expires_at=now + ttl))
            if progress:
                await conn.execute(
                    _PROGRESS.where(t.tasks.c.lease_agent == agent_id),
                    [{"b_id": task, "b_bytes": done} for task, done in progress.items()],
                )
            c = t.tasks.c
            rows = (
                await conn.execute(
                    select(
                        c.id, c.cancel_requested, c.source_site, c.destination_site, c.transfer_id
                    ).where(mine)
                )
            ).all()
            stopped = await conn.run_sync(
                self._stopped_pairs, {(r.source_site, r.destination_site) for r in rows}
            )
            paused = await conn.run_sync(stopped_by_pause, {r.transfer_id for r in rows})
        still_mine = {r.id for r in rows}
        stop = {
            r.id
            for r in rows
            if r.cancel_requested
            or (r.source_site, r.destination_site) in stopped
            or r.transfer_id in paused
        }
        return sorted(stop | (set(held) - still_mine))

    async def mark_agent_lost(
        self, agent_id: str, why: str, *, silent_since: datetime | None = None
    ) -> int:
        a = t.agents.c
        lost = update(t.agents).where(a.id == agent_id).values(state=AgentState.LOST.value)
        if silent_since is not None:  # a heartbeat that arrived meanwhile keeps it alive
            lost = lost.where(a.last_heartbeat < silent_since)
        async with self._tx() as conn:
            if (await conn.execute(lost)).rowcount == 0 and silent_since is not None:
                return 0
            return await conn.run_sync(self._requeue_leases, t.tasks.c.lease_agent == agent_id, why)

    async def retire_agent(self, agent_id: str) -> int:
        """The agent leaves: RETIRED (it gets no lease until it registers again), and the
        leases it still holds (granted while it was stopping, never received) go back to the
        queue uncounted. Return how many."""
        c = t.tasks.c
        async with self._tx() as conn:
            await conn.execute(
                update(t.agents)
                .where(t.agents.c.id == agent_id)
                .values(state=AgentState.RETIRED.value)
            )
            carriers = await conn.run_sync(self._release_carriers, agent_id)
            held = (
                await conn.execute(
                    select(c.id, c.lease_token, c.transfer_id).where(
                        (c.lease_agent == agent_id)
                        & t.task_state_is(TaskState.ACTIVE.value)
                        & Unindexed(c.origin).is_(None)
                    )
                )
            ).all()
            if held:
                await conn.run_sync(execute_many, _RELEASE, [(r.id, r.lease_token) for r in held])
                await conn.run_sync(park_paused, [(r.transfer_id, r.id) for r in held])
        return carriers + len(held)

    async def silent_agents(self, since: datetime) -> list[Agent]:
        a = t.agents.c
        alive = (AgentState.REGISTERED.value, AgentState.ALIVE.value)
        rows = await self._reading(
            all_rows,
            select(t.agents).where(a.state.in_(alive) & (a.last_heartbeat < since)),
        )
        return [agent_from_row(r) for r in rows]

    async def agent_statistics(self, agent_ids: Sequence[str]) -> dict[str, AgentStatistics]:
        """Counters from the agents table, objects held from the tasks' lease index, and the
        bytes of the objects each moved in the last minute (a DONE task keeps its agent; the
        index of DONE tasks by agent and end)."""
        ids = list(agent_ids)
        if not ids:
            return {}
        c = t.tasks.c
        window = self.clock() - THROUGHPUT_WINDOW
        held_by_agent = (  # objects: a carrier's count each
            select(c.lease_agent, func.sum(c.objects))
            .where(c.lease_agent.in_(ids) & t.task_state_is(TaskState.ACTIVE.value))
            .group_by(c.lease_agent)
        )
        moved_lately = (
            select(c.lease_agent, func.coalesce(func.sum(c.bytes_done), 0))
            .where(
                c.lease_agent.in_(ids)
                & t.task_state_is(TaskState.DONE.value)
                & (c.finished_at >= window)
            )
            .group_by(c.lease_agent)
        )

        def read(conn: Connection) -> tuple[list[Any], dict[str, int], dict[str, int]]:
            counters = all_rows(conn, select(t.agents).where(t.agents.c.id.in_(ids)))
            held = {agent: int(n) for agent, n in conn.execute(held_by_agent)}
            moved = {agent: int(n) for agent, n in conn.execute(moved_lately)}
            return counters, held, moved

        counters, held, recent = await self._reading(read)
        seconds = THROUGHPUT_WINDOW.total_seconds()
        return {
            row.id: AgentStatistics(
                ongoing=int(held.get(row.id, 0)),
                succeeded=row.succeeded,
                failed=row.failed,
                canceled=row.canceled,
                bytes=row.bytes,
                throughput=round(int(recent.get(row.id, 0)) / seconds, 1),
            )
            for row in counters
        }
