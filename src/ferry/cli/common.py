"""What every client command shares: how to reach the server, JSON output, the console."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Server URL [env FERRY_URL].", show_default=False)
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="Bearer token [env FERRY_TOKEN].", show_default=False)
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where to find admin.token.", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def console() -> Console:
    """On a terminal, tables fit its width and long cells wrap; into a pipe, lines are never cut."""
    return Console(width=None if sys.stdout.isatty() else 10_000)


def print_json(data: BaseModel | list[Any] | dict[str, Any]) -> None:
    """What ``--json`` prints: indented, non-ASCII kept."""
    plain = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    typer.echo(json.dumps(plain, indent=2, ensure_ascii=False))
