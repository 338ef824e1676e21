"""``ferry admin reconfig|off|config`` (administrators): DaemonCore's remote commands, over the
API, to the server or, with ``--agent NAME``, relayed to one of its agents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ferry.cli.common import DataDirOption, JsonOption, TokenOption, UrlOption, print_json

admin_app = typer.Typer(
    help="Reconfigure, stop or ask a setting of the server or an agent (administrators).",
    no_args_is_help=True,
)

AgentOption = Annotated[
    str | None,
    typer.Option(
        "--agent",
        help="Relay the command to this agent (name or id); default: the server itself.",
        show_default=False,
    ),
]
# An agent's answer comes with its next heartbeat: the server waits two heartbeats for it.
ANSWER_TIMEOUT_S = 300.0


def _send(
    path: str, body: dict[str, Any], url: str | None, token: str | None, data_dir: Path | None
) -> Any:
    from ferry.client._base import Request
    from ferry.client.plain import PlainClient

    with PlainClient(url, token, data_dir, timeout=ANSWER_TIMEOUT_S) as client:
        return client.send(Request("POST", f"/api/v1/admin/{path}", json=body))


def _target(agent: str | None) -> dict[str, Any]:
    return {} if agent is None else {"agent": agent}


@admin_app.command("reconfig")
def reconfig(
    agent: AgentOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Read the configuration file again and apply what can change while running, as SIGHUP
    does: log levels at once; a setting that needs a restart is named in the daemon's log."""
    result = _send("reconfig", _target(agent), url, token, data_dir)
    if as_json:
        print_json(result)
        return
    changed = ", ".join(result["changed"]) or "nothing"
    typer.echo(f"{result['daemon']}: {result['detail']} (changed: {changed})")


@admin_app.command("off")
def off(
    agent: AgentOption = None,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Give back every lease at once and exit (SIGQUIT). Without it: no new"
            " leases, copies finish within the grace period, the rest is given back (SIGTERM).",
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop the server, or an agent: the daemon answers, then stops. (A local agent of the
    server is started again by it; stop the server to stop those.)"""
    result = _send("off", {**_target(agent), "fast": fast}, url, token, data_dir)
    if as_json:
        print_json(result)
        return
    typer.echo(f"{result['daemon']}: {result['detail']}")


@admin_app.command("config")
def config(
    key: Annotated[str, typer.Argument(help="The setting, dotted: port, log.level, grace_s.")],
    agent: AgentOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The value of a setting in force, and where it came from: command line, environment,
    file or default. A secret's value is never shown, only that it is set."""
    result = _send("config", {**_target(agent), "key": key}, url, token, data_dir)
    if as_json:
        print_json(result)
        return
    import json

    value = "(set, hidden)" if result["hidden"] else json.dumps(result["value"])
    typer.echo(f"{result['daemon']}: {result['key']} = {value} (from {result['source']})")


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
