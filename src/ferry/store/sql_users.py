"""Users and their tokens in SQL (gCube's checkIn): an administrator adds a user with its role
and scopes and gets its first token; more tokens are made, listed (never shown) and revoked.

A token is kept as its hash; it is named by the start of that hash (``TOKEN_ID_LENGTH``) and
shown by its first characters (``PREFIX_LENGTH``), neither of which gives it away."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ferry.domain.transfers import Role
from ferry.errors import Conflict, InvalidRequest, NotFound
from ferry.store import tables as t
from ferry.store.abc import TokenInfo, User
from ferry.store.sql_base import SqlBase, all_rows, first_row, hash_secret

TOKEN_ID_LENGTH = 12
PREFIX_LENGTH = 6
ADMIN_USER = "admin"  # the administrator ``ferry server`` makes on its first start


def token_info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.hash[:TOKEN_ID_LENGTH],
        user=row.client,
        agent_id=row.agent_id,
        role=Role(row.role),
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


def _user(row: Any) -> User:
    return User(row.name, Role(row.role), tuple(row.scopes), row.created_at)


class UsersMixin(SqlBase):
    async def add_user(
        self, name: str, role: Role, scopes: list[str], token: str, expires_at: datetime | None
    ) -> tuple[User, TokenInfo]:
        """A new user with ``token`` as its first token. Its scopes must exist."""
        now = self.clock()
        async with self._tx() as conn:
            taken = await conn.execute(select(t.clients.c.name).where(t.clients.c.name == name))
            if taken.first() is not None:
                raise Conflict(f"user {name!r} exists: remove it first, or give it a new token")
            await _refuse_unknown_scopes(conn, scopes)
            await conn.execute(
                insert(t.clients).values(
                    name=name, role=role.value, scopes=sorted(set(scopes)), created_at=now
                )
            )
            info = await self._insert_token(conn, name, role, token, expires_at)
        return User(name, role, tuple(sorted(set(scopes))), now), info

    async def list_users(self) -> list[User]:
        rows = await self._reading(all_rows, select(t.clients).order_by(t.clients.c.name))
        return [_user(row) for row in rows]

    async def get_user(self, name: str) -> User:
        row = await self._reading(first_row, select(t.clients).where(t.clients.c.name == name))
        if row is None:
            raise NotFound(f"no user {name!r}")
        return _user(row)

    async def remove_user(self, name: str) -> None:
        """The user and every token of it, at once."""
        if name == ADMIN_USER:
            raise Conflict(f"user {ADMIN_USER!r} is the server's own administrator: kept")
        async with self._tx_revoking() as conn:
            await conn.execute(delete(t.tokens).where(t.tokens.c.client == name))
            removed = await conn.execute(delete(t.clients).where(t.clients.c.name == name))
            if removed.rowcount == 0:
                raise NotFound(f"no user {name!r}")

    async def create_token(self, user: str, token: str, expires_at: datetime | None) -> TokenInfo:
        async with self._tx() as conn:
            row = (await conn.execute(select(t.clients).where(t.clients.c.name == user))).first()
            if row is None:
                raise NotFound(f"no user {user!r}")
            return await self._insert_token(conn, user, Role(row.role), token, expires_at)

    async def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """The users' tokens (``user``'s only, when given), oldest first; agents' are not."""
        c = t.tokens.c
        query = select(t.tokens).where(c.client.is_not(None)).order_by(c.created_at, c.hash)
        if user is not None:
            query = query.where(c.client == user)
        return [token_info(row) for row in await self._reading(all_rows, query)]

    async def revoke_token(self, token_id: str, *, user: str | None = None) -> TokenInfo:
        """Revoke the token named ``token_id`` (of ``user``, when given): it stops working at
        once, on every server sharing the database."""
        if len(token_id) != TOKEN_ID_LENGTH or not token_id.isalnum():
            raise NotFound(f"no token {token_id!r}")
        c = t.tokens.c
        mine = c.hash.startswith(token_id.lower(), autoescape=True) & c.client.is_not(None)
        if user is not None:
            mine &= c.client == user
        async with self._tx_revoking() as conn:
            row = (await conn.execute(select(t.tokens).where(mine))).first()
            if row is None:
                raise NotFound(f"no token {token_id!r}")
            await conn.execute(delete(t.tokens).where(c.hash == row.hash))
        return token_info(row)

    async def _insert_token(
        self,
        conn: AsyncConnection,
        user: str,
        role: Role,
        token: str,
        expires_at: datetime | None,
    ) -> TokenInfo:
        now, digest, prefix = self.clock(), hash_secret(token), token[:PREFIX_LENGTH]
        await conn.execute(
            insert(t.tokens).values(
                hash=digest,
                role=role.value,
                client=user,
                created_at=now,
                prefix=prefix,
                expires_at=expires_at,
            )
        )
        return TokenInfo(digest[:TOKEN_ID_LENGTH], user, None, role, prefix, now, expires_at, None)


async def _refuse_unknown_scopes(conn: AsyncConnection, scopes: list[str]) -> None:
    if not scopes:
        raise InvalidRequest("a user needs at least one scope")
    known = set(
        (await conn.execute(select(t.scopes.c.name).where(t.scopes.c.name.in_(scopes)))).scalars()
    )
    if unknown := sorted(set(scopes) - known):
        raise InvalidRequest(
            f"no scope {', '.join(map(repr, unknown))}: make it first"
            " (ferry scope set NAME --weight 1)"
        )
