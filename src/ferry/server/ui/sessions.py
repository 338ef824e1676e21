"""Dashboard sessions: a token signs in once; the browser then holds only a random session id
(an HttpOnly, SameSite=Strict cookie, Secure over https). The token stays in the server's
memory and is authenticated again on every request, so a revoked or expired token ends its
sessions at once. Every form carries its session's CSRF token, checked on POST."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response

from ferry.domain.transfers import Role
from ferry.errors import FormRejected, SignInNeeded, Unauthenticated
from ferry.server.audit_trail import note_caller
from ferry.server.deps import StateDep, check_caller_address
from ferry.store.abc import Principal

SESSION_COOKIE = "ferry_session"
LOGIN_COOKIE = "ferry_login"  # the sign-in form's own CSRF token, before any session exists
SESSION_TTL_S = 12 * 3600
SESSIONS_KEPT = 10_000  # past it, the oldest session ends
FORM_BYTES_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    token: str
    csrf: str
    started: float = field(default_factory=time.monotonic)


class Sessions:
    """The live sessions of one server process (a restart signs everyone out)."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, kept: int = SESSIONS_KEPT) -> None:
        self._ttl_s = ttl_s
        self._kept = kept
        self._by_id: dict[str, Session] = {}

    def start(self, token: str) -> Session:
        while len(self._by_id) >= self._kept:
            del self._by_id[next(iter(self._by_id))]  # dicts keep insertion order: the oldest
        session = Session(id=secrets.token_urlsafe(32), token=token, csrf=secrets.token_urlsafe(32))
        self._by_id[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        session = self._by_id.get(session_id or "")
        if session is not None and time.monotonic() - session.started > self._ttl_s:
            self.end(session.id)
            return None
        return session

    def end(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at a page: the principal its session's token stands for, and the session."""

    principal: Principal
    session: Session

    @property
    def may_write(self) -> bool:
        return self.principal.role.allows(Role.WRITE)

    @property
    def may_administer(self) -> bool:
        return self.principal.role is Role.ADMINISTRATOR

    @property
    def scopes(self) -> tuple[str, ...] | None:
        """The scopes it sees; ``None``: every one (an administrator)."""
        return None if self.principal.role is Role.ADMINISTRATOR else self.principal.scopes


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.ui_sessions
    return sessions


async def viewer(state: StateDep, request: Request) -> Viewer:
    """The signed-in viewer, or ``SignInNeeded`` (the dashboard answers with the sign-in page)."""
    sessions = sessions_of(request)
    session = sessions.find(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInNeeded()
    try:
        principal = await state.store.authenticate(session.token)
    except Unauthenticated:
        sessions.end(session.id)
        raise SignInNeeded() from None
    note_caller(request, principal)
    check_caller_address(state, request, principal.role)
    return Viewer(principal, session)


ViewerDep = Annotated[Viewer, Depends(viewer)]


async def form_of(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (the dashboard's forms are all of that kind); a field
    given twice keeps its first value."""
    body = await request.body()
    if len(body) > FORM_BYTES_MAX:
        raise FormRejected()
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def check_csrf(expected: str, form: dict[str, str]) -> None:
    if not secrets.compare_digest(expected.encode(), form.get("csrf", "").encode()):
        raise FormRejected()


async def posted_form(request: Request, viewer: ViewerDep) -> dict[str, str]:
    """The form of a signed-in viewer's POST, refused (403) without the session's CSRF token."""
    form = await form_of(request)
    check_csrf(viewer.session.csrf, form)
    return form


PostedForm = Annotated[dict[str, str], Depends(posted_form)]


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
