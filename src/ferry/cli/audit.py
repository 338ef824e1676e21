"""``ferry audit ls|verify`` (administrators): who changed what, from where, when, with which
result; and whether the trail's hash chain still holds, or which record was changed or
removed first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    UrlOption,
    console,
    plain_client,
    print_json,
    seconds,
)
from ferry.cli.registry import parse_duration
from ferry.client._base import Request
from ferry.errors import InvalidRequest

audit_app = typer.Typer(help="The audit trail: every state-changing call (administrators).")


def since_instant(text: str, now: datetime) -> str:
    """``1h``, ``2d`` (that long before ``now``) or an ISO 8601 time → an ISO 8601 time."""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return (now - timedelta(seconds=parse_duration(text))).isoformat()
    except InvalidRequest:
        raise InvalidRequest(f"--since {text!r}: give a duration (1h, 2d) or an ISO time") from None


@audit_app.command("ls")
def audit_ls(
    user: Annotated[str | None, typer.Option(help="Only this user's acts.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only since: 1h, 2d back, or an ISO time.", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="The last this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The last records of the audit trail, oldest first."""
    params: dict[str, Any] = {"limit": limit}
    if user is not None:
        params["user"] = user
    if since is not None:
        params["since"] = since_instant(since, datetime.now(UTC))
    with plain_client(url, token, data_dir) as client:
        found = client.send(Request("GET", "/api/v1/audit", params=params))
    if as_json:
        print_json(found)
        return
    from rich.table import Table

    table = Table()
    for name in ("seq", "at", "who", "from", "what", "on", "result"):
        table.add_column(name)
    for r in found:
        on = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        if r["target"] is not None:
            on = f"{on} → {r['target']}" if on else r["target"]
        who = f"{r['actor'] or '-'} ({r['role']})" if r["role"] else r["actor"] or "-"
        row = (str(r["seq"]), seconds(r["at"]), who, r["address"] or "", r["action"])
        table.add_row(*row, on, str(r["status"]))
    console().print(table)


@audit_app.command("verify")
def audit_verify(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check the trail's hash chain: exit 0 when whole, 1 naming the first bad record."""
    with plain_client(url, token, data_dir) as client:
        check = client.send(Request("GET", "/api/v1/audit/verify"))
    if as_json:
        print_json(check)
    elif check["ok"]:
        typer.echo(f"audit trail whole: {check['records']} records, head {check['head']}")
    else:
        typer.echo(f"error: audit record {check['first_bad']} is bad: {check['why']}", err=True)
    if not check["ok"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
