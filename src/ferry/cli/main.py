"""``ferry``: start the daemons, submit and follow transfers.

Errors end in one line on standard error and a non-zero exit: 1 for a refused or failed
operation, 2 for a usage error."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ferry import __version__
from ferry.errors import FerryError

if TYPE_CHECKING:
    from typer._click import Command, Context

# Each command, in the order `ferry --help` lists them, and the module that defines it (its
# `register(app)` adds it). A command loads its own module alone when it runs: a command line is
# over in a fraction of a second, and importing every command's module (and building every
# command's parameters) was most of what `ferry submit --wait` cost before it sent a byte.
COMMANDS = {
    "server": "daemons",
    "agent": "daemons",
    "submit": "transfers",
    "plan": "sync",
    "status": "transfers",
    "ls": "transfers",
    "outcomes": "transfers",
    "cancel": "transfers",
    "pause": "pauses",
    "resume": "pauses",
    "rerun": "transfers",
    "watch": "transfers",
    "runs": "schedules",
    "agents": "registry",
    "agent-invite": "registry",
    "push": "passive",
    "pull": "passive",
    "copy": "copy",
    "whoami": "users",
    "schedule": "schedules",
    "storage": "storages",
    "channel": "registry",
    "scope": "registry",
    "user": "users",
    "token": "users",
    "audit": "audit",
    "admin": "admin",
    "completion": "completion",
}


COMPLETE_VAR = "_FERRY_COMPLETE"  # set by the scripts ``ferry completion`` prints

# What follows ``ferry agent`` to manage an agent rather than run one.
AGENT_CONTROLS = ("pause", "resume")


def _settings() -> dict[str, Any]:
    return {
        "pretty_exceptions_enable": False,
        "add_completion": False,
        # Help and usage errors as plain text: rendering them with rich costs its import on
        # every `ferry --help` and every mistyped option.
        "rich_markup_mode": None,
    }


@functools.cache
def module_commands(module: str) -> TyperGroup:
    """The commands one module of ``ferry.cli`` registers, as a group (built once)."""
    commands = typer.Typer(**_settings())
    importlib.import_module(f"ferry.cli.{module}").register(commands)
    group = typer.main.get_group(commands)
    assert isinstance(group, TyperGroup)
    return group


@functools.cache
def agent_controls() -> TyperGroup:
    """``ferry agent pause|resume``, a group of ``ferry.cli.pauses`` (not a command of its
    own: ``ferry agent`` is the daemon's)."""
    group = typer.main.get_group(importlib.import_module("ferry.cli.pauses").agent_app)
    assert isinstance(group, TyperGroup)
    return group


class LazyCommands(TyperGroup):
    """The ``ferry`` group: knows its commands by name, loads one when it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """``ferry agent pause|resume NAME`` manages an agent; ``ferry agent`` runs one."""
        if len(args) > 1 and args[0] == "agent" and args[1] in AGENT_CONTROLS:
            return "agent", agent_controls(), args[1:]
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        module = COMMANDS.get(cmd_name)
        return None if module is None else module_commands(module).commands.get(cmd_name)


app = typer.Typer(
    name="ferry",
    help="Ferry: schedule data transfers between storages and see what moved.",
    no_args_is_help=True,
    cls=LazyCommands,
    **_settings(),
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


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def main() -> None:
    if COMPLETE_VAR in os.environ:  # a shell asks what may come next (``ferry completion``)
        from ferry.cli.completion import prepare

        prepare()
    try:
        app(complete_var=COMPLETE_VAR)
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
