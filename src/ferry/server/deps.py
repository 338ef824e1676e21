"""Request dependencies: the server state and the caller, checked against a role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferry.domain.transfers import Role
from ferry.errors import Forbidden, Unauthenticated
from ferry.server.state import ServerState
from ferry.store.abc import Principal

_bearer = HTTPBearer(auto_error=False)


# Every dependency is a coroutine: FastAPI runs a plain function in a worker thread, a
# hand-off per request.
async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.ferry
    return state


StateDep = Annotated[ServerState, Depends(get_state)]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def optional_principal(state: StateDep, credentials: CredentialsDep) -> Principal | None:
    if credentials is None:
        return None
    return await state.store.authenticate(credentials.credentials)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(state: StateDep, credentials: CredentialsDep) -> Principal:
        if credentials is None:
            raise Unauthenticated()
        principal = await state.store.authenticate(credentials.credentials)
        if not principal.role.allows(role):
            raise Forbidden(role.value)
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require(Role.READ))]
Writer = Annotated[Principal, Depends(require(Role.WRITE))]
Administrator = Annotated[Principal, Depends(require(Role.ADMINISTRATOR))]
Daemon = Annotated[Principal, Depends(require(Role.DAEMON))]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
