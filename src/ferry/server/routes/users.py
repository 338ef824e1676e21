"""Users and their tokens (gCube's checkIn): administrators add and remove users; anyone makes,
lists and revokes tokens of their own. A token is shown once, when it is made."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ferry.api.schemas import (
    TokenCreated,
    TokenIn,
    TokenPublic,
    UserCreated,
    UserIn,
    UserPublic,
    WhoAmI,
)
from ferry.domain.transfers import Role
from ferry.errors import Forbidden
from ferry.server.audit_trail import note_target
from ferry.server.deps import Administrator, Reader, StateDep
from ferry.server.state import ServerState
from ferry.store.abc import Principal, TokenInfo, User
from ferry.store.sql_registry import new_token

router = APIRouter(tags=["users"])

TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="a token's id")]


@router.get("/users", response_model=list[UserPublic])
async def list_users(state: StateDep, caller: Administrator) -> list[UserPublic]:
    return [_user(user) for user in await state.store.list_users()]


@router.post(
    "/users",
    response_model=UserCreated,
    status_code=201,
    responses={409: {"description": "A user of that name exists"}},
)
async def add_user(
    body: UserIn, state: StateDep, caller: Administrator, request: Request
) -> UserCreated:
    """A new user, with its first token (shown this once)."""
    note_target(request, body.name)
    token = new_token()
    user, info = await state.store.add_user(
        body.name, Role(body.role), body.scopes, token, _expiry(state, body.expires_s)
    )
    return UserCreated(**_user(user).model_dump(), token=_created(info, token))


@router.delete(
    "/users/{name}",
    status_code=204,
    responses={409: {"description": "The server's own administrator is kept"}},
)
async def remove_user(
    name: Annotated[str, Path(max_length=128)], state: StateDep, caller: Administrator
) -> Response:
    """The user and all its tokens: they stop working at once."""
    await state.store.remove_user(name)
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenPublic])
async def list_tokens(
    state: StateDep,
    caller: Reader,
    user: Annotated[str | None, Query(max_length=128, description="administrators")] = None,
) -> list[TokenPublic]:
    """The caller's tokens; an administrator's sees every user's (or ``user``'s)."""
    whose = user if caller.role is Role.ADMINISTRATOR else caller.name
    if user is not None and user != whose:
        raise Forbidden("only administrators list the tokens of other users")
    return [_public(info) for info in await state.store.list_tokens(whose)]


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    responses={404: {"description": "No user of that name"}},
)
async def create_token(
    body: TokenIn, state: StateDep, caller: Reader, request: Request
) -> TokenCreated:
    """Another token of the caller's (or, for an administrator, of ``user``'s)."""
    user = _whose(caller, body.user)
    token = new_token()
    info = await state.store.create_token(user, token, _expiry(state, body.expires_s))
    note_target(request, info.id)
    return _created(info, token)


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: TokenId, state: StateDep, caller: Reader) -> Response:
    """The token stops working at once; an administrator may revoke anyone's."""
    mine = None if caller.role is Role.ADMINISTRATOR else caller.name
    await state.store.revoke_token(token_id, user=mine)
    return Response(status_code=204)


@router.get("/whoami", response_model=WhoAmI)
async def whoami(state: StateDep, caller: Reader) -> WhoAmI:
    scopes: list[str] = []
    if caller.agent_id is None:
        scopes = list((await state.store.get_user(caller.name)).scopes)
    return WhoAmI(
        name=caller.name,
        kind="agent" if caller.agent_id is not None else "user",
        role=caller.role.value,
        scopes=scopes,
        token_expires_at=caller.expires_at,
    )


def _whose(caller: Principal, user: str | None) -> str:
    if caller.agent_id is not None:
        raise Forbidden("an agent's token is made when it registers")
    if user is None or user == caller.name:
        return caller.name
    if caller.role is not Role.ADMINISTRATOR:
        raise Forbidden("only administrators make tokens for other users")
    return user


def _expiry(state: ServerState, seconds: int | None) -> datetime | None:
    return None if seconds is None else state.clock() + timedelta(seconds=seconds)


def _user(user: User) -> UserPublic:
    return UserPublic(
        name=user.name, role=user.role.value, scopes=list(user.scopes), created_at=user.created_at
    )


def _public(info: TokenInfo) -> TokenPublic:
    return TokenPublic(
        id=info.id,
        user=info.user,
        role=info.role.value,
        prefix=info.prefix,
        created_at=info.created_at,
        expires_at=info.expires_at,
        last_used_at=info.last_used_at,
    )


def _created(info: TokenInfo, token: str) -> TokenCreated:
    return TokenCreated(**_public(info).model_dump(), token=token)
