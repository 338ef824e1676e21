"""``ferry``: start the daemons, submit and follow transfers.

Errors end in one line on standard error and a non-zero exit: 1 for a refused or failed
operation, 2 for a usage error."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ferry import __version__
from ferry.cli import (
    audit,
    daemons,
    passive,
    registry,
    schedules,
    storages,
    transfers,
    users,
)
from ferry.errors import FerryError

app = typer.Typer(
    name="ferry",
    help="Ferry: schedule data transfers between storages and see what moved.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help and usage errors as plain text: rendering them with rich costs its import on every
    # `ferry --help` and every mistyped option.
    rich_markup_mode=None,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"ferry {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print Ferry's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            help="Trust the server's certificate by this CA (PEM) instead of the system's"
            " [env FERRY_CA].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The options that come before a command."""
    if ca is not None:
        # What the clients (and ``ferry agent``) read the CA from, for this command.
        os.environ["FERRY_CA"] = str(ca)


daemons.register(app)
transfers.register(app)
schedules.register(app)
storages.register(app)
registry.register(app)
passive.register(app)
users.register(app)
audit.register(app)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def main() -> None:
    try:
        app()
    except FerryError as exc:
        fail(str(exc))
    except TimeoutError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        fail(_library_error(exc))


def _library_error(exc: Exception) -> str:
    """The one line for an error of httpx (the typed client) or pydantic (settings), which are
    looked up only if imported: a command that never loaded them cannot have raised theirs."""
    httpx, pydantic = sys.modules.get("httpx"), sys.modules.get("pydantic")
    if httpx is not None and isinstance(exc, httpx.TransportError):
        from ferry.client.tls import why_unreachable

        try:
            url = str(exc.request.url)
        except RuntimeError:  # an error raised before its request was built
            url = ""
        hung_up = isinstance(exc, httpx.RemoteProtocolError)
        return f"cannot reach the server: {why_unreachable(url, exc, hung_up=hung_up)}"
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        return f"invalid settings: {first['loc'][0]}: {first['msg']}"
    raise exc
