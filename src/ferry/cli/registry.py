"""``ferry agents``, ``ferry channel set|ls|rm``, ``ferry scope set|ls``: the information
system and the dispatch's limits."""

from __future__ import annotations

import os
import re
import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    UrlOption,
    console,
    plain_client,
    print_json,
    typed_client,
)
from ferry.domain.channels import ChannelState
from ferry.domain.options import parse_rate
from ferry.errors import InvalidRequest

if TYPE_CHECKING:
    from ferry.api.schemas import ChannelPublic

channel_app = typer.Typer(help="Channels: how much may move between two sites at once.")
scope_app = typer.Typer(help="Scopes: tenants and their share of the dispatch.")


AGENT_COLUMNS = (
    "held: objects leased to the agent now, copying or waiting their turn in it; copying: those"
    " it was copying at its last heartbeat; done, bytes: objects it moved, in all; failed:"
    " its attempts that failed, retried or not; B/s: over the last minute"
)


def agents(
    every_agent: Annotated[
        bool, typer.Option("--all", help="Retired agents too (those that said they left).")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Agents (not retired ones, unless --all): state, host, version, tasks held now and
    statistics."""
    with plain_client(url, token, data_dir) as client:
        found = client.listing("agents")
    if not every_agent:
        found = [a for a in found if a["state"] != "RETIRED"]
    if as_json:
        print_json(found)
        return
    from rich.table import Table

    table = Table(caption=AGENT_COLUMNS)
    columns = ("name", "state", "host", "version", "held", "copying", "done", "failed", "bytes")
    for name in (*columns, "B/s"):
        table.add_column(name, overflow="fold")
    for a in found:
        s = a["stats"]
        table.add_row(
            a["name"],
            a["state"] + (" (paused)" if a.get("paused_at") else ""),
            a["host"],
            a["version"] or "",
            str(a["active"]),
            str(len(a["status"].get("active", []))),
            str(s["succeeded"]),
            str(s["failed"]),
            str(s["bytes"]),
            f"{s['throughput']:.0f}",
        )
    console().print(table)


def agent_invite(
    name: Annotated[str, typer.Argument(help="The name the agent will register under.")],
    ttl: Annotated[str, typer.Option(help="How long it is valid: 30m, 1h, 2d.")] = "1h",
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a one-time secret for a remote agent (administrators) and print the command that
    runs it there: the secret goes in the environment, which ps does not show."""
    with typed_client(url, token, data_dir) as client:
        invitation = client.invite_agent(name, ttl_s=parse_duration(ttl))
        command = agent_command(client.url, invitation.name, invitation.secret)
    if as_json:
        print_json({**invitation.model_dump(mode="json"), "command": command})
        return
    typer.echo(command)
    typer.echo(
        f"one-time secret for agent {invitation.name}, valid until"
        f" {invitation.expires_at:%Y-%m-%d %H:%M:%S} UTC; once registered, the agent keeps its"
        " token in its data directory and needs no new invitation",
        err=True,
    )


def agent_command(server: str, name: str, secret: str) -> str:
    """The command that runs the invited agent, ready to paste (the CA this command trusted,
    when it was given one)."""
    words = ["ferry", "agent", "--server", server, "--name", name]
    if ca := os.environ.get("FERRY_CA"):
        words += ["--ca", ca]
    return f"FERRY_AGENT_SECRET={secret} " + shlex.join(words)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``10m``, ``1h``, ``2d`` → seconds."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise InvalidRequest(f"{text!r} is not a duration: use e.g. 30m, 1h, 2d")
    return float(match.group(1)) * _SECONDS[match.group(2)]


@channel_app.command("set")
def channel_set(
    source_site: Annotated[str, typer.Argument(help="Source site, or * for any.")],
    destination_site: Annotated[str, typer.Argument(help="Destination site, or * for any.")],
    max_active: Annotated[
        int | None,
        typer.Option(
            "--max-active", min=0, help="Objects moving at once; with --optimize, the ceiling."
        ),
    ] = None,
    optimize: Annotated[
        bool,
        typer.Option(
            "--optimize/--no-optimize",
            help="Let the link optimizer move the limit with the measured throughput.",
        ),
    ] = False,
    min_active: Annotated[
        int | None,
        typer.Option("--min-active", min=1, help="With --optimize: the floor, and the start."),
    ] = None,
    bandwidth: Annotated[
        str | None, typer.Option(help="Shared limit, bytes/s: 500K, 10M.", show_default=False)
    ] = None,
    state: Annotated[
        ChannelState, typer.Option(help="drain: finish active, start none; stopped: stop all.")
    ] = ChannelState.ACTIVE,
    timetable: Annotated[
        str | None,
        typer.Option(
            "--bandwidth-timetable",
            help="In place of --bandwidth, the rate by time of week:"
            ' "Mon-Fri 08:00,50M; 19:00,off" (applied as the clock passes, no restart).',
            show_default=False,
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="The timetable's clock, an IANA name: Europe/Rome.")
    ] = "UTC",
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create or replace the channel SOURCE_SITE → DESTINATION_SITE (administrators)."""
    with typed_client(url, token, data_dir) as client:
        channel = client.set_channel(
            source_site,
            destination_site,
            max_active=max_active,
            bandwidth=parse_rate(bandwidth) if bandwidth else None,
            state=state.value,
            bandwidth_timetable=timetable,
            timezone=timezone,
            optimize=optimize,
            min_active=min_active,
        )
    if as_json:
        print_json(channel.model_dump(mode="json"))
    else:
        console().print(
            f"{channel.source_site}→{channel.destination_site}: {channel.state.value},"
            f" {_limit_text(channel)}, bandwidth {_rate_now(channel)}"
        )


def _rate_now(channel: ChannelPublic) -> str:
    """The rate its tasks share now, and until when a timetable holds it."""
    now = "unlimited" if channel.bandwidth_now is None else f"{channel.bandwidth_now} B/s"
    if channel.next_change is None:
        return now
    return f"{now} until {channel.next_change:%a %Y-%m-%d %H:%M:%S %Z}"


def _limit_text(channel: ChannelPublic) -> str:
    """``max active 8``, ``unlimited``, or an optimized channel's ``optimized 2…64, now 12``."""
    if channel.optimize:
        return f"optimized {channel.min_active}…{channel.max_active}, now {channel.limit}"
    return f"max active {channel.max_active if channel.max_active is not None else 'unlimited'}"


@channel_app.command("ls")
def channel_ls(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Channels, with the objects active in each now."""
    with typed_client(url, token, data_dir) as client:
        found = client.channels()
    if as_json:
        print_json([c.model_dump(mode="json") for c in found])
        return
    from rich.table import Table

    table = Table()
    columns = ("channel", "state", "limit", "active", "bandwidth now", "timetable", "optimizer")
    for name in columns:
        table.add_column(name)
    for c in found:
        table.add_row(
            f"{c.source_site}→{c.destination_site}",
            c.state.value,
            "unlimited" if c.limit is None else str(c.limit),
            str(c.active),
            _rate_now(c),
            "" if c.bandwidth_timetable is None else f"{c.bandwidth_timetable} ({c.timezone})",
            _optimizer_text(c),
        )
    console().print(table)


def _optimizer_text(channel: ChannelPublic) -> str:
    """An optimized channel's bounds and last decision; empty for one that is not."""
    if not channel.optimize:
        return ""
    bounds = f"{channel.min_active}…{channel.max_active}"
    decision = channel.decision
    return bounds if decision is None else f"{bounds}: {decision.reason}"


@channel_app.command("rm")
def channel_rm(
    source_site: Annotated[str, typer.Argument(help="Source site, or *.")],
    destination_site: Annotated[str, typer.Argument(help="Destination site, or *.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a channel: its pairs fall to the next matching channel, or to no limit."""
    with typed_client(url, token, data_dir) as client:
        client.remove_channel(source_site, destination_site)
    if as_json:
        removed = {"source_site": source_site, "destination_site": destination_site}
        print_json({**removed, "removed": True})
    else:
        typer.echo(f"removed {source_site}→{destination_site}")


@scope_app.command("set")
def scope_set(
    name: Annotated[str, typer.Argument(help="Scope name.")],
    weight: Annotated[int, typer.Option(min=1, max=1000, help="Share in the round-robin.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a scope or change its weight (administrators)."""
    with typed_client(url, token, data_dir) as client:
        scope = client.set_scope(name, weight=weight)
    if as_json:
        print_json(scope)
    else:
        typer.echo(f"{scope.name}: weight {scope.weight}")


@scope_app.command("ls")
def scope_ls(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Scopes and their weights."""
    with typed_client(url, token, data_dir) as client:
        found = client.scopes()
    if as_json:
        print_json([s.model_dump(mode="json") for s in found])
        return
    for s in found:
        console().print(f"{s.name}: weight {s.weight}")


def register(app: typer.Typer) -> None:
    app.command()(agents)
    app.command("agent-invite")(agent_invite)
    app.add_typer(channel_app, name="channel")
    app.add_typer(scope_app, name="scope")
