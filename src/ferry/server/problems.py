"""Ferry errors become RFC 9457 problem+json answers here, and nowhere else."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from ferry.errors import (
    AccessDenied,
    AgentDidNotAnswer,
    AuthError,
    Conflict,
    FerryError,
    Forbidden,
    InvalidRequest,
    NotFound,
    SecretRejected,
    ServerStopping,
    StorageUnreachable,
    StoreUnavailable,
    TransferError,
    Unauthenticated,
)

log = logging.getLogger("ferry.api")

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[FerryError], int]] = [
    (InvalidRequest, 422),
    (ServerStopping, 503),
    (AgentDidNotAnswer, 504),
    (StoreUnavailable, 503),
    (StorageUnreachable, 502),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthenticated, 401),
    (SecretRejected, 403),
    (Forbidden, 403),
    (AuthError, 403),
    # A storage the server read for the caller (a folder listed) failed: the caller's request
    # was fine, what stands behind the server was not.
    (AccessDenied, 403),
    (TransferError, 502),
]


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: FerryError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


async def ferry_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FerryError)
    status = status_of(exc)
    if isinstance(exc, StoreUnavailable):
        return database_unavailable(exc)
    if status >= 500 and not isinstance(
        exc, ServerStopping | StorageUnreachable | AgentDidNotAnswer
    ):
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return problem(status, "internal error; the server log has the details")
    return problem(status, str(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"location": "", "message": "invalid request"}
    detail = f"{first['location']}: {first['message']}" if first["location"] else first["message"]
    return problem(422, detail, title="Invalid request", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        detail = f"{request.method} is not one of {allowed}"
        return problem(405, detail, headers={"Allow": allowed})
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
_PARAMETER = re.compile(r"\\\{[^}]*\\\}")


def allowed_methods(request: Request) -> str:
    """The methods the resource at the request's path takes. Each is asked of the router (its
    own 405 names the methods of the first route that matched the path only), then those of a
    less specific path are left out: ``/transfers/pull`` takes POST, although a GET there is
    routed to ``/transfers/{transfer_id}``."""
    path = request.scope["path"]
    probe = {"type": "http", "path": path, "root_path": ""}
    routed = {
        method
        for method in METHODS
        if any(
            route.matches({**probe, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }
    documented = _documented_methods(request.app.openapi(), path)
    return ", ".join(sorted(routed & documented or routed))


def _documented_methods(document: dict[str, Any], path: str) -> set[str]:
    """The methods of the most specific path of ``document`` (the fewest parameters) that
    ``path`` matches, parameters taken as one segment each."""
    matching = [
        template
        for template in document.get("paths", {})
        if re.fullmatch(_PARAMETER.sub("[^/]+", re.escape(template)), path)
    ]
    if not matching:
        return set()
    template = min(matching, key=lambda t: t.count("{"))
    return {method.upper() for method in document["paths"][template]}


# How often one cause of database trouble is logged: once a minute, with how many requests it
# failed meanwhile (a full disk logged 373 tracebacks in 20 s).
TROUBLE_LOG_EVERY_S = 60.0
_trouble_logged: dict[str, tuple[float, int]] = {}


def database_trouble(exc: BaseException) -> str:
    """One line for why the database failed a request, logged at most once a minute per
    cause (no traceback: the cause is the database's state, not the code's)."""
    if isinstance(exc, StoreUnavailable):
        cause = exc.cause
    else:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200] or type(exc).__name__
    now = time.monotonic()
    last, missed = _trouble_logged.get(cause, (-TROUBLE_LOG_EVERY_S, 0))
    if now - last >= TROUBLE_LOG_EVERY_S:
        more = f" ({missed} more requests failed so since the last line)" if missed else ""
        log.error("the database cannot serve requests: %s%s", cause, more)
        _trouble_logged[cause] = (now, 0)
    else:
        _trouble_logged[cause] = (last, missed + 1)
    return cause


# What a 503 for the database's state tells a client: when to try again.
RETRY_AFTER = {"Retry-After": "5"}


def database_unavailable(exc: BaseException) -> JSONResponse:
    """The 503 for a request the database failed, whichever way it failed (a driver's error,
    or the store's refusal while it is unwritable); its cause is logged by ``database_trouble``."""
    cause = database_trouble(exc)
    response = problem(503, f"the database is unavailable ({cause}): try again shortly")
    response.headers.update(RETRY_AFTER)
    return response


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return database_unavailable(exc)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client (an agent being stopped, most often) closed its connection before its request's
    body was read: nobody is left to answer, and nothing went wrong here."""
    log.info(
        "%s %s: the client went away before its request was read", request.method, request.url.path
    )
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s crashed", request.method, request.url.path)
    return problem(500, "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(FerryError, ferry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
