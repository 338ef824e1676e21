"""``ferry storage add | ls | rm | grant | ungrant``: the registry of storages, and which scopes'
transfers may read from and write to each."""

from __future__ import annotations

import json
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
from ferry.client._base import Request
from ferry.errors import InvalidRequest


def parse_pairs(values: list[str], what: str, *, typed: bool) -> dict[str, Any]:
    """KEY=VALUE pairs; with ``typed``, a value that reads as JSON (10, true, null) is taken as
    such, as fsspec options expect. Credentials stay strings (a password of digits is still a
    password), but for JSON lists and objects (``auth=["user", "pass"]``, ``client_keys=[…]``)."""
    pairs: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"--{what} {item.split('=')[0]!r}...: expected KEY=VALUE")
        pairs[key] = _typed(value) if typed or value[:1] in ("[", "{") else value
    return pairs


def _typed(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def add(
    name: Annotated[str, typer.Argument(help="Name used in locations (NAME:PATH).")],
    url: Annotated[
        str, typer.Argument(help="fsspec URL of its root: sftp://host/path, s3://bucket/…")
    ],
    site: Annotated[str, typer.Option("--site", help="Site, for channels.")] = "default",
    option: Annotated[
        list[str] | None, typer.Option("--option", help="Backend option KEY=VALUE.")
    ] = None,
    credential: Annotated[
        list[str] | None, typer.Option("--credential", help="Secret KEY=VALUE, stored encrypted.")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Replace the storage of that name (not while transfers use it)."
        ),
    ] = False,
    as_json: JsonOption = False,
    url_: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a storage (--replace: replace one); the server checks that it answers."""
    options = parse_pairs(option or [], "option", typed=True)
    secrets = parse_pairs(credential or [], "credential", typed=False)
    with plain_client(url_, token, data_dir) as client:
        request = client.add_storage_request(
            name, url, site=site, options=options, credentials=secrets, replace=replace
        )
        storage = client.send(request)
    if as_json:
        print_json(storage)
        return
    typer.echo(f"storage {storage['name']} added ({storage['url']}): {describe(storage['health'])}")


def describe(health: dict[str, Any] | None) -> str:
    """One word and the storage's own message: ok, warning (it answered, but…), down."""
    if health is None:
        return "unchecked"
    if not health["reachable"]:
        return f"down: {health['error'] or 'unreachable'}"
    return f"warning: {health['error']}" if health["error"] else "ok"


def ls(
    as_json: JsonOption = False,
    url_: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List storages with their health (credentials show by name only)."""
    with plain_client(url_, token, data_dir) as client:
        found = client.listing("storages")
    if as_json:
        print_json(found)
        return
    from rich.table import Table

    table = Table("name", "url", "site", "credentials", "granted to", "health", "latency")
    for s in found:
        h = s["health"]
        latency = f"{h['latency_ms']:.0f} ms" if h and h["latency_ms"] is not None else ""
        credentials = ", ".join(s["credentials"])
        table.add_row(
            s["name"], s["url"], s["site"], credentials, granted(s["grants"]), describe(h), latency
        )
    console().print(table)


def granted(grants: list[dict[str, Any]]) -> str:
    """``default (read, write), team (read)``."""
    return ", ".join(f"{g['scope']} ({access(g)})" for g in grants)


def access(grant: dict[str, Any]) -> str:
    return ", ".join(name for name in ("read", "write") if grant[name])


def grant(
    name: Annotated[str, typer.Argument(help="Storage name.")],
    scope: Annotated[str, typer.Option("--scope", help="The scope granted.")],
    read: Annotated[bool, typer.Option("--read", help="Its transfers may read from it.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Its transfers may write to it.")] = False,
    as_json: JsonOption = False,
    url_: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Let a scope's transfers read from (--read) and/or write to (--write) a storage
    (administrators); it replaces what the scope had."""
    if not (read or write):
        raise InvalidRequest("say what the scope may do: --read, --write or both")
    body = {"read": read, "write": write}
    with plain_client(url_, token, data_dir) as client:
        given = client.send(Request("PUT", f"/api/v1/storages/{name}/grants/{scope}", json=body))
    if as_json:
        print_json(given)
        return
    typer.echo(f"storage {name} granted to scope {scope}: {access(given)}")


def ungrant(
    name: Annotated[str, typer.Argument(help="Storage name.")],
    scope: Annotated[str, typer.Option("--scope", help="The scope whose grant goes.")],
    as_json: JsonOption = False,
    url_: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Take a scope's grant on a storage away (administrators): its transfers submitted from
    now on may not use it."""
    with plain_client(url_, token, data_dir) as client:
        client.send(Request("DELETE", f"/api/v1/storages/{name}/grants/{scope}"))
    if as_json:
        print_json({"storage": name, "scope": scope, "granted": False})
    else:
        typer.echo(f"storage {name} no longer granted to scope {scope}")


def rm(
    name: Annotated[str, typer.Argument(help="Storage name.")],
    as_json: JsonOption = False,
    url_: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a storage that no waiting or running transfer uses."""
    with plain_client(url_, token, data_dir) as client:
        client.remove_storage(name)
    if as_json:
        print_json({"name": name, "removed": True})
    else:
        typer.echo(f"storage {name} removed")


def register(app: typer.Typer) -> None:
    storage_app = typer.Typer(help="The storages transfers move between.", no_args_is_help=True)
    storage_app.command("add")(add)
    storage_app.command("ls")(ls)
    storage_app.command("rm")(rm)
    storage_app.command("grant")(grant)
    storage_app.command("ungrant")(ungrant)
    app.add_typer(storage_app, name="storage")
