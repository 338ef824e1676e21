"""The dashboard at ``/``: server-rendered pages (Jinja2) made live with htmx and the event
stream, signed in with a token. None of its routes is in the OpenAPI document."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from ferry.errors import FerryError, SignInNeeded
from ferry.server.problems import ferry_error, status_of
from ferry.server.ui import agents, auth, overview, registry, submit, transfers
from ferry.server.ui.render import add_filters, page
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
    app.add_exception_handler(FerryError, _page_or_problem)
    # submit before transfers: /transfers/new is no transfer's id
    for module in (auth, overview, submit, transfers, agents, registry):
        app.include_router(module.router, include_in_schema=False)


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    if request.method == "GET" and "HX-Request" not in request.headers:
        return RedirectResponse("/login", status_code=303)
    return Response("sign in first", status_code=401, headers={"HX-Redirect": "/login"})


async def _page_or_problem(request: Request, exc: Exception) -> Response:
    """A refusal of a dashboard page or form (a cancel the role does not allow, a re-run of a
    storage the scope lost) is a page a person can read, with the same status; the API, and
    the dashboard's own background requests, get the problem document."""
    browsing = "text/html" in request.headers.get("accept", "")
    if request.url.path.startswith("/api/") or "HX-Request" in request.headers or not browsing:
        return await ferry_error(request, exc)
    assert isinstance(exc, FerryError)
    status = status_of(exc)
    told = status < 500 or status == 503  # a 503 says why (the database, a shutdown)
    detail = str(exc) if told else "internal error; the server log has the details"
    if status >= 500:
        await ferry_error(request, exc)  # logged as the API's answer would be
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}/"
    back = referer if referer.startswith(origin) else "/"
    title = HTTPStatus(status).phrase
    return page(request, "error.html", None, status, title=title, detail=detail, back=back)
