"""``ferry pause | resume ID`` and ``ferry agent pause | resume NAME``: hold a transfer (its
objects are not leased, a periodic one's occurrences are skipped) or drain an agent."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    TransferIdArgument,
    UrlOption,
    plain_client,
    print_json,
)

AgentArgument = Annotated[str, typer.Argument(help="The agent's name (or id).")]

# Set as ``ferry.cli.main`` sets every group: plain-text help, no completion, no pretty traces.
agent_app = typer.Typer(
    help="Drain an agent (pause) or let it lease again (resume). `ferry agent` alone runs one.",
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def pause(
    transfer_id: TransferIdArgument,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Stop its active copies too: each goes back to the queue (no attempt spent,"
            " no partial file left) and starts again when resumed. Without it they finish.",
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Pause a transfer: no new copies of its objects start, and each occurrence of a periodic
    one that comes due while paused is recorded as a SKIPPED run (one-shot: it waits). Its
    status does not change, and its deadline still holds. `ferry resume` undoes it."""
    with plain_client(url, token, data_dir) as client:
        result = client.pause(transfer_id, now=now)
    _print(result, as_json)


def resume(
    transfer_id: TransferIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Resume a paused transfer: its objects go back to the queue; a periodic one goes on with
    its next occurrence (the skipped ones are not run)."""
    with plain_client(url, token, data_dir) as client:
        result = client.resume(transfer_id)
    _print(result, as_json)


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    held = "held" if result["paused_at"] else "queued again"
    typer.echo(f"{result['id']}: {result['outcome']} ({result['objects']} objects {held})")


@agent_app.command("pause")
def pause_agent(
    name: AgentArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Drain an agent: it gets no new leases and finishes what it holds (administrators)."""
    with plain_client(url, token, data_dir) as client:
        agent = client.pause_agent(name)
    _print_agent(agent, "paused: it finishes what it holds and takes nothing new", as_json)


@agent_app.command("resume")
def resume_agent(
    name: AgentArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Let a paused agent lease again (administrators)."""
    with plain_client(url, token, data_dir) as client:
        agent = client.resume_agent(name)
    _print_agent(agent, "resumed", as_json)


def _print_agent(agent: dict[str, Any], said: str, as_json: bool) -> None:
    if as_json:
        print_json(agent)
    else:
        typer.echo(f"agent {agent['name']}: {said} ({agent['active']} objects held now)")


def register(app: typer.Typer) -> None:
    app.command()(pause)
    app.command()(resume)
