"""Every state-changing call is recorded in the audit trail, once, here: who (the principal
``deps.require`` found), from which address, what (method, route template and its path
parameters), the id it made, and the result (the HTTP status). The record is written before
the answer leaves, so a client that got its answer finds its act in the trail.

Never recorded: bodies and query strings (they carry tokens, secrets, credentials), reads, and
the agents' and pushing clients' own protocol (leases, reports, heartbeats, objects), which
are not acts of anyone's will and come by the thousand."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferry.errors import StoreUnavailable
from ferry.store.abc import AccessStore, AuditEntry, Principal

log = logging.getLogger("ferry.audit")

API_PREFIX = "/api/v1"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
PROTOCOL = frozenset(
    {
        "/api/v1/agents/{agent_id}/lease",
        "/api/v1/agents/{agent_id}/report",
        "/api/v1/agents/{agent_id}/results",
        "/api/v1/agents/{agent_id}/heartbeat",
        "/api/v1/agents/{agent_id}/answer",
        "/api/v1/transfers/{transfer_id}/data/{name:path}",
        "/api/v1/transfers/{transfer_id}/received/{name:path}",
        "/api/v1/transfers/{transfer_id}/skipped",
    }
)
LONGEST = 256  # a kept value's characters: the columns' width


def note_caller(request: Request, principal: Principal) -> None:
    """Who the call is from, for its record (set as soon as the token is known)."""
    request.state.audit_principal = principal


def note_target(request: Request, target: str) -> None:
    """What the call made or named that its path does not show (a new id, a name)."""
    request.state.audit_target = target


async def record(store: AccessStore, entry: AuditEntry) -> None:
    """Append ``entry``; a failure is logged, not raised: the act it records is done."""
    try:
        await store.append_audit(entry)
    except (StoreUnavailable, OperationalError) as exc:  # the database's state: one line
        log.error(
            "audit record not written: %s by %s (status %d): %s",
            entry.action,
            entry.actor or "-",
            entry.status,
            str(exc).splitlines()[0][:200],
        )
    except Exception:
        log.exception("audit record not written: %s by %s", entry.action, entry.actor or "-")


class AuditTrail:
    """ASGI middleware: records each state-changing call as its answer starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        if not scope["path"].startswith(API_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the routes, which note the caller in it
        recorded = False

        async def recording(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        except Exception:
            if not recorded:
                await self._record(scope, 500)
            raise

    async def _record(self, scope: Scope, status: int) -> None:
        if route_of(scope) in PROTOCOL:
            return
        await record(scope["app"].state.ferry.store, entry_of(scope, status))


def route_of(scope: Scope) -> str | None:
    """The template of the route that answered, from the API's root; None when none did.
    FastAPI gives it relative to the router it was included by (``/users``); older
    releases gave it whole."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return None
    return path if path.startswith(API_PREFIX + "/") else API_PREFIX + path


def entry_of(scope: Scope, status: int) -> AuditEntry:
    """The record of the call ``scope`` describes: a route matched is named by its template
    (the ids are in ``params``); a path that matched none, by itself."""
    route = route_of(scope)
    state: dict[str, Any] = scope.get("state", {})
    principal: Principal | None = state.get("audit_principal")
    client = scope.get("client")
    params = {key: _short(value) for key, value in scope.get("path_params", {}).items()}
    target = state.get("audit_target")
    return AuditEntry(
        actor=principal.name if principal else None,
        role=principal.role.value if principal else None,
        address=client[0][:64] if client else None,
        action=_short(f"{scope['method']} {route or scope['path']}"),
        params=params if route else {},
        status=status,
        target=None if target is None else _short(target),
    )


def _short(value: Any) -> Any:
    return value[:LONGEST] if isinstance(value, str) else value
