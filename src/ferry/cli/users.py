"""``ferry user add|ls|rm``, ``ferry token create|ls|revoke``, ``ferry whoami``: who may use the
service, with which role and in which scopes (gCube's checkIn). A token is printed once, when
it is made; afterwards it is known by its id and its first characters."""

from __future__ import annotations

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
)
from ferry.cli.registry import parse_duration
from ferry.client._base import Request

user_app = typer.Typer(help="Users: who may use the service, with which role, in which scopes.")
token_app = typer.Typer(help="Tokens: made, listed (never shown again) and revoked.")

ExpiresOption = Annotated[
    str | None,
    typer.Option(
        "--expires", help="How long it is valid: 12h, 90d (default: no expiry).", show_default=False
    ),
]


def _lifetime(expires: str | None) -> int | None:
    return None if expires is None else max(1, round(parse_duration(expires)))


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str, typer.Option(help="READ, WRITE or ADMINISTRATOR.")] = "WRITE",
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope it acts in (repeatable).")
    ] = None,
    expires: ExpiresOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a user (administrators) and print its token, this once."""
    body = {
        "name": name,
        "role": role.upper(),
        "scopes": scope or ["default"],
        "expires_s": _lifetime(expires),
    }
    with plain_client(url, token, data_dir) as client:
        added = client.send(Request("POST", "/api/v1/users", json=body))
    if as_json:
        print_json(added)
        return
    typer.echo(added["token"]["token"])
    typer.echo(
        f"user {added['name']} ({added['role']}, scopes {', '.join(added['scopes'])}):"
        " its token is above, shown this once",
        err=True,
    )


@user_app.command("ls")
def user_ls(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Users, their roles and scopes (administrators)."""
    with plain_client(url, token, data_dir) as client:
        found = client.send(Request("GET", "/api/v1/users"))
    if as_json:
        print_json(found)
        return
    for user in found:
        console().print(f"{user['name']}: {user['role']}, scopes {', '.join(user['scopes'])}")


@user_app.command("rm")
def user_rm(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a user (administrators): its tokens stop working at once."""
    with plain_client(url, token, data_dir) as client:
        client.send(Request("DELETE", f"/api/v1/users/{name}"))
    if as_json:
        print_json({"name": name, "removed": True})
    else:
        typer.echo(f"removed user {name}")


@token_app.command("create")
def token_create(
    user: Annotated[
        str | None, typer.Argument(help="Whose (administrators); default: yours.")
    ] = None,
    expires: ExpiresOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make another token and print it, this once."""
    body = {"user": user, "expires_s": _lifetime(expires)}
    with plain_client(url, token, data_dir) as client:
        made = client.send(Request("POST", "/api/v1/tokens", json=body))
    if as_json:
        print_json(made)
        return
    typer.echo(made["token"])
    typer.echo(f"token {made['id']} of {made['user']}: shown this once", err=True)


@token_app.command("ls")
def token_ls(
    user: Annotated[str | None, typer.Option(help="Whose (administrators).")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Tokens by id and first characters, with their expiry and last use; never the token."""
    params = {"user": user} if user else None
    with plain_client(url, token, data_dir) as client:
        found = client.send(Request("GET", "/api/v1/tokens", params=params))
    if as_json:
        print_json(found)
        return
    from rich.table import Table

    table = Table()
    for name in ("id", "user", "role", "starts", "created", "expires", "last used"):
        table.add_column(name)
    for t in found:
        table.add_row(
            t["id"],
            t["user"] or "",
            t["role"],
            f"{t['prefix']}…" if t["prefix"] else "",
            _when(t["created_at"]),
            _when(t["expires_at"]),
            _when(t["last_used_at"]),
        )
    console().print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (token ls).")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a token: it stops working at once."""
    with plain_client(url, token, data_dir) as client:
        client.send(Request("DELETE", f"/api/v1/tokens/{token_id}"))
    if as_json:
        print_json({"id": token_id, "revoked": True})
    else:
        typer.echo(f"revoked token {token_id}")


def whoami(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Who the token speaks for: name, role, scopes, and when it expires."""
    with plain_client(url, token, data_dir) as client:
        me = client.send(Request("GET", "/api/v1/whoami"))
    if as_json:
        print_json(me)
        return
    expiry = _when(me["token_expires_at"]) or "never"
    typer.echo(
        f"{me['name']} ({me['kind']}, {me['role']}), scopes: {', '.join(me['scopes']) or '-'};"
        f" token expires: {expiry}"
    )


def _when(value: Any) -> str:
    return "" if value is None else str(value)[:19].replace("T", " ")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.command()(whoami)
