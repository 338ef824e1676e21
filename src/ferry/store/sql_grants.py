"""Storage grants in SQL: which scopes' transfers may read from and write to a storage."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from ferry.errors import InvalidRequest, NotFound
from ferry.store import tables as t
from ferry.store.abc import Grant
from ferry.store.sql_base import SqlBase, all_rows


class GrantsMixin(SqlBase):
    async def grant_storage(self, storage: str, scope: str, *, read: bool, write: bool) -> Grant:
        """Set what ``scope``'s transfers may do with ``storage`` (replacing what it had)."""
        if not (read or write):
            raise InvalidRequest("a grant gives read, write or both: to take it away, ungrant")
        c = t.storage_grants.c
        async with self._tx() as conn:
            if (
                await conn.execute(select(t.storages.c.name).where(t.storages.c.name == storage))
            ).first() is None:
                raise NotFound(f"no storage {storage!r}")
            if (
                await conn.execute(select(t.scopes.c.name).where(t.scopes.c.name == scope))
            ).first() is None:
                raise InvalidRequest(
                    f"no scope {scope!r}: make it first (ferry scope set NAME --weight 1)"
                )
            mine = (c.storage == storage) & (c.scope == scope)
            changed = await conn.execute(
                update(t.storage_grants).where(mine).values(read=read, write=write)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(t.storage_grants).values(
                        storage=storage, scope=scope, read=read, write=write
                    )
                )
        return Grant(storage, scope, read, write)

    async def ungrant_storage(self, storage: str, scope: str) -> None:
        c = t.storage_grants.c
        async with self._tx() as conn:
            gone = await conn.execute(
                delete(t.storage_grants).where((c.storage == storage) & (c.scope == scope))
            )
        if gone.rowcount == 0:
            raise NotFound(f"storage {storage!r} is not granted to scope {scope!r}")

    async def storage_grants(
        self, *, storage: str | None = None, scopes: list[str] | None = None
    ) -> list[Grant]:
        """The grants of ``storage`` (or of every storage), to ``scopes`` (or to every scope)."""
        c = t.storage_grants.c
        query = select(t.storage_grants).order_by(c.storage, c.scope)
        if storage is not None:
            query = query.where(c.storage == storage)
        if scopes is not None:
            query = query.where(c.scope.in_(scopes))
        rows = await self._reading(all_rows, query)
        return [Grant(r.storage, r.scope, r.read, r.write) for r in rows]
