"""Rendering a dashboard page: its template, the viewer, and the filters the templates use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment
from pydantic import ValidationError
from starlette.responses import Response

from ferry.server.ui.sessions import Viewer

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def page(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    templates: Jinja2Templates = request.app.state.ui_templates
    response = templates.TemplateResponse(
        request, name, {"viewer": viewer, **context}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    )
    return response


def explain(exc: ValidationError) -> str:
    """A form's invalid fields in one line, for the page that shows the form again."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


def size(value: int | None) -> str:
    if value is None:
        return "–"
    amount = float(value)
    for unit in UNITS:
        if amount < 1024 or unit == UNITS[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def when(value: datetime | str | None) -> str:
    """A time to the second; ISO 8601 text (a storage's recorded health) is read first."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def percent(done: int, total: int) -> int:
    return 0 if total <= 0 else min(100, round(100 * done / total))


def add_filters(env: Environment) -> None:
    env.filters["size"] = size
    env.filters["when"] = when
    env.globals["percent"] = percent
