"""Request dependencies: the server state and the caller, checked against a role."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferry.domain.transfers import Role
from ferry.errors import AddressRefused, Forbidden, Unauthenticated
from ferry.server.access import check_address
from ferry.server.audit_trail import note_caller
from ferry.server.state import ServerState
from ferry.store.abc import Principal

security = logging.getLogger("ferry.security")

_bearer = HTTPBearer(auto_error=False)


# Every dependency is a coroutine: FastAPI runs a plain function in a worker thread, a
# hand-off per request.
async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.ferry
    return state


StateDep = Annotated[ServerState, Depends(get_state)]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def check_caller_address(state: ServerState, request: Request, role: Role) -> None:
    """The rules of ``role`` for the caller's address (``AddressRefused``, 403), read from the
    settings as they are now: a SIGHUP that changes them applies to the next request."""
    address = request.client.host if request.client is not None else None
    try:
        check_address(state.settings.access, role.value, address)
    except AddressRefused as exc:
        security.warning("%s %s refused: %s", request.method, request.url.path, exc)
        raise


async def optional_principal(
    state: StateDep, request: Request, credentials: CredentialsDep
) -> Principal | None:
    if credentials is None:
        return None
    principal = await state.store.authenticate(credentials.credentials)
    note_caller(request, principal)
    check_caller_address(state, request, principal.role)
    return principal


async def registrant(
    state: StateDep, request: Request, credentials: CredentialsDep
) -> Principal | None:
    """Who registers an agent: a token's principal, or nobody for a one-time secret, whose
    caller must pass the rules of the role it is about to get (``DAEMON``)."""
    principal = await optional_principal(state, request, credentials)
    if principal is None:
        check_caller_address(state, request, Role.DAEMON)
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        state: StateDep, request: Request, credentials: CredentialsDep
    ) -> Principal:
        if credentials is None:
            raise Unauthenticated()
        principal = await state.store.authenticate(credentials.credentials)
        note_caller(request, principal)
        check_caller_address(state, request, principal.role)
        if not principal.role.allows(role):
            raise Forbidden(role.value)
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require(Role.READ))]
Writer = Annotated[Principal, Depends(require(Role.WRITE))]
Administrator = Annotated[Principal, Depends(require(Role.ADMINISTRATOR))]
Daemon = Annotated[Principal, Depends(require(Role.DAEMON))]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
Registrant = Annotated[Principal | None, Depends(registrant)]
