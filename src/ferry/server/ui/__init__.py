"""The dashboard at ``/``: server-rendered pages (Jinja2) made live with htmx and the event
stream, signed in with a token. None of its routes is in the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from ferry.errors import SignInNeeded
from ferry.server.ui import agents, auth, overview, registry, submit, transfers
from ferry.server.ui.render import add_filters
from ferry.server.ui.sessions import Sessions

HERE = Path(__file__).parent


def install(app: FastAPI) -> None:
    """Add the dashboard's pages, its static files and its sessions to ``app``."""
    templates = Jinja2Templates(directory=HERE / "templates")
    add_filters(templates.env)
    templates.env.globals["active_cell"] = registry.active_cell
    app.state.ui_templates = templates
    app.state.ui_sessions = Sessions()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInNeeded, _to_sign_in)
    # submit before transfers: /transfers/new is no transfer's id
    for module in (auth, overview, submit, transfers, agents, registry):
        app.include_router(module.router, include_in_schema=False)


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    if request.method == "GET" and "HX-Request" not in request.headers:
        return RedirectResponse("/login", status_code=303)
    return Response("sign in first", status_code=401, headers={"HX-Redirect": "/login"})
