"""``ferry``: start the daemons, submit and follow transfers.

Errors end in one line on standard error and a non-zero exit: 1 for a refused or failed
operation, 2 for a usage error."""

from __future__ import annotations

import sys

import httpx
import typer
from pydantic import ValidationError

from ferry.cli import daemons, passive, registry, schedules, storages, transfers
from ferry.errors import FerryError

app = typer.Typer(
    name="ferry",
    help="Ferry: schedule data transfers between storages and see what moved.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
daemons.register(app)
transfers.register(app)
schedules.register(app)
storages.register(app)
registry.register(app)
passive.register(app)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def main() -> None:
    try:
        app()
    except FerryError as exc:
        fail(str(exc))
    except httpx.TransportError as exc:
        fail(f"cannot reach the server: {exc}")
    except ValidationError as exc:
        fail(f"invalid settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    except TimeoutError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
