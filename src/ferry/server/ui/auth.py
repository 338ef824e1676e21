"""Signing in to the dashboard with a token, and out."""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from ferry.domain.transfers import Role
from ferry.errors import Unauthenticated
from ferry.server.deps import StateDep, check_caller_address
from ferry.server.ui.render import page
from ferry.server.ui.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    PostedForm,
    ViewerDep,
    check_csrf,
    form_of,
    sessions_of,
    set_cookie,
)

router = APIRouter()
security = logging.getLogger("ferry.security")

LOGIN_FORM_TTL_S = 3600


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request, error=None, status_code=200)


def _login_page(request: Request, error: str | None, status_code: int) -> Response:
    csrf = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, status_code, csrf=csrf, error=error)
    set_cookie(request, response, LOGIN_COOKIE, csrf, LOGIN_FORM_TTL_S)
    return response


@router.post("/login")
async def login(request: Request, state: StateDep) -> Response:
    form = await form_of(request)
    check_csrf(request.cookies.get(LOGIN_COOKIE, ""), form)
    token = form.get("token", "").strip()
    try:
        principal = await state.store.authenticate(token)
    except Unauthenticated:
        security.warning("dashboard sign-in refused from %s: unknown token", _address(request))
        return _login_page(request, error="That token is not known.", status_code=401)
    if not principal.role.allows(Role.READ):  # an agent's token
        return _login_page(request, error="That token is not a user's.", status_code=403)
    check_caller_address(state, request, principal.role)
    session = sessions_of(request).start(token)
    response = RedirectResponse("/", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session.id, SESSION_TTL_S)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, viewer: ViewerDep, form: PostedForm) -> Response:
    sessions_of(request).end(viewer.session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "-"
