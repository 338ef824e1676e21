"""What every client command shares: how to reach the server, JSON output, the console.

Each command imports what it uses when it runs, not here or at the top of its module: ``ferry
--help`` and the plain commands (``status``, ``ls``, …) start without httpx, pydantic or rich,
and a test holds them to it (tests/cli/test_startup.py)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from ferry.client import Client
    from ferry.client.plain import PlainClient

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Server URL [env FERRY_URL].", show_default=False)
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="Bearer token [env FERRY_TOKEN].", show_default=False)
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where to find admin.token.", show_default=False)
]


def _transfer_ids(incomplete: str) -> list[tuple[str, str]]:
    from ferry.cli.completion import transfer_ids

    return transfer_ids(incomplete)


def complete_location(incomplete: str) -> list[str]:
    from ferry.cli.completion import locations

    return locations(incomplete)


TransferIdArgument = Annotated[
    str,
    typer.Argument(
        help="Transfer id, or a unique start of it (6 characters or more).",
        autocompletion=_transfer_ids,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def console() -> Console:
    """On a terminal, tables fit its width and long cells wrap; into a pipe, lines are never cut."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 10_000)


def typed_client(url: str | None, token: str | None, data_dir: Path | None) -> Client:
    """The library's client (httpx, answers as the API's schemas), for the commands that
    wait, follow or stream."""
    from ferry.client import Client

    return Client(url, token, data_dir)


def plain_client(url: str | None, token: str | None, data_dir: Path | None) -> PlainClient:
    from ferry.client.plain import PlainClient

    return PlainClient(url, token, data_dir)


def seconds(instant: str | None) -> str:
    """An API time (ISO 8601) to the second, as a person reads it; nothing for no time."""
    return datetime.fromisoformat(instant).isoformat(timespec="seconds") if instant else ""


def print_json(data: BaseModel | list[Any] | dict[str, Any]) -> None:
    """What ``--json`` prints: indented, non-ASCII kept."""
    plain = data if isinstance(data, list | dict) else data.model_dump(mode="json")
    typer.echo(json.dumps(plain, indent=2, ensure_ascii=False))
