"""``ferry server`` and ``ferry agent``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from ferry.domain.locations import is_storage_name
from ferry.errors import InvalidRequest


def parse_storages(values: list[str]) -> dict[str, str]:
    storages = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url or not is_storage_name(name):
            raise InvalidRequest(
                f"--storage {value!r}: expected NAME=URL, e.g. data=file:///srv/data"
            )
        storages[name] = url
    return storages


def server(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8470).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Database and tokens (default ./.ferry).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the database (default: SQLite in the data dir), e.g."
            " postgresql+psycopg://ferry@db.example.org/ferry for several servers."
        ),
    ] = None,
    agents: Annotated[
        int | None, typer.Option(help="Local agents to start and supervise (default 2).")
    ] = None,
    storage: Annotated[
        list[str] | None, typer.Option(help="Declare a storage NAME=URL (repeatable).")
    ] = None,
    allow_unregistered: Annotated[
        list[str] | None,
        typer.Option(
            help="Allow URLs of these hosts (patterns: *.example.org) as locations without a"
            " registered storage (repeatable)."
        ),
    ] = None,
    lease_ttl: Annotated[
        float | None, typer.Option(help="Seconds a lease lives without a heartbeat.")
    ] = None,
    heartbeat: Annotated[
        float | None, typer.Option(help="Seconds between agent heartbeats.")
    ] = None,
    agent_max_active: Annotated[
        int | None, typer.Option(help="Copies each local agent runs at once (default 8).")
    ] = None,
    agent_lost_after: Annotated[
        float | None,
        typer.Option(help="Seconds without a heartbeat before an agent is LOST (default 30)."),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = None,
) -> None:
    """Run the scheduler service: the API, the scheduler loops and the local agents."""
    from ferry.config import ServerSettings
    from ferry.daemon.logs import configure_logging
    from ferry.server.run import serve

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "db": db,
        "agents": agents,
        "lease_ttl_s": lease_ttl,
        "heartbeat_s": heartbeat,
        "agent_max_active": agent_max_active,
        "agent_lost_after_s": agent_lost_after,
        "log_level": log_level,
        "storages": parse_storages(storage) if storage else None,
        "allow_unregistered": allow_unregistered,
    }
    settings = ServerSettings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_level, daemon="server")
    serve(settings)


def agent(
    server: Annotated[str, typer.Option(help="The server's URL.", envvar="FERRY_URL")],
    secret: Annotated[
        str | None,
        typer.Option(
            help="One-time registration secret.", envvar="FERRY_AGENT_SECRET", show_default=False
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Agent token.", envvar="FERRY_AGENT_TOKEN", show_default=False),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Agent name (default: host name).")] = None,
    max_active: Annotated[int, typer.Option(min=1, max=1024, help="Tasks copied at once.")] = 8,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run a transfer agent: register with the server and move data for it."""
    from ferry.agent.main import main as run_agent
    from ferry.daemon.logs import configure_logging

    if bool(secret) == bool(token):
        raise InvalidRequest("give exactly one of --secret and --token")
    agent_name = name or socket.gethostname()
    configure_logging(log_level, daemon=f"agent-{agent_name}")
    raise SystemExit(
        run_agent(server, name=agent_name, secret=secret, token=token, max_active=max_active)
    )


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(agent)
