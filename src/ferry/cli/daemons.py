"""``ferry server`` and ``ferry agent``."""

from __future__ import annotations

import socket
import sys
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


def parse_access(allow: list[str], deny: list[str]) -> dict[str, dict[str, list[str]]]:
    """``--allow ROLE=CIDR`` and ``--deny ROLE=CIDR`` as the settings' ``access`` table."""
    access: dict[str, dict[str, list[str]]] = {}
    for kind, values in (("allow", allow), ("deny", deny)):
        for value in values:
            role, sep, network = value.partition("=")
            if not sep or not role or not network:
                raise InvalidRequest(
                    f"--{kind} {value!r}: expected ROLE=CIDR, e.g. ADMINISTRATOR=10.0.0.0/8"
                )
            rules = access.setdefault(role.upper(), {"allow": [], "deny": []})
            rules[kind].append(network)
    return access


# The options both daemons share (DaemonCore's common command line).
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file: its [server] or [agent] table.", show_default=False),
]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Database, tokens and keys (default ./.ferry).")
]
LogDirOption = Annotated[
    Path | None,
    typer.Option(help="Also log to a rotating file here (server.log, agent-NAME.log)."),
]
LogLevelOption = Annotated[
    str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (default INFO).")
]


def _log(log_dir: Path | None, log_level: str | None) -> dict[str, Any] | None:
    given = {"dir": log_dir, "level": log_level}
    return {k: v for k, v in given.items() if v is not None} or None


def server(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8470).")] = None,
    data_dir: DataDirOption = None,
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
    agent_prefix: Annotated[
        str | None,
        typer.Option(
            help="Name local agents PREFIX-1, PREFIX-2… (default: local on SQLite, HOST-PORT on"
            " a shared database)."
        ),
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
    hung_timeout: Annotated[
        float | None,
        typer.Option(help="Replace a local agent silent for this long (default 60 s)."),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds stopping agents may finish their copies (default 10)."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            help="Accept callers of ROLE (READ, WRITE, ADMINISTRATOR, DAEMON) only from these"
            " networks: ROLE=CIDR (repeatable; none: from anywhere).",
            show_default=False,
        ),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option(
            help="Refuse callers of ROLE from this network: ROLE=CIDR (repeatable; wins over"
            " --allow).",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve https with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            help="The CA local agents trust the certificate by (default: the certificate)."
        ),
    ] = None,
    insecure_http: Annotated[
        bool | None,
        typer.Option(
            "--insecure-http",
            help="Listen on a non-loopback address without TLS (tokens travel in clear).",
            show_default=False,
        ),
    ] = None,
    metrics_token: Annotated[
        str | None,
        typer.Option(
            help="Ask scrapers of /metrics for this bearer token (default: /metrics is open);"
            " better from FERRY_METRICS_TOKEN, which ps does not show.",
            envvar="FERRY_METRICS_TOKEN",
            show_default=False,
        ),
    ] = None,
    log_dir: LogDirOption = None,
    log_level: LogLevelOption = None,
) -> None:
    """Run the scheduler service: the API, the scheduler loops and the local agents."""
    from ferry.config import ServerSettings
    from ferry.daemon.config import load_settings
    from ferry.daemon.logs import configure_logging
    from ferry.server.run import serve

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "db": db,
        "agents": agents,
        "agent_prefix": agent_prefix,
        "lease_ttl_s": lease_ttl,
        "heartbeat_s": heartbeat,
        "agent_max_active": agent_max_active,
        "agent_lost_after_s": agent_lost_after,
        "hung_timeout_s": hung_timeout,
        "grace_s": grace,
        "log": _log(log_dir, log_level),
        "storages": parse_storages(storage) if storage else None,
        "allow_unregistered": allow_unregistered,
        "access": parse_access(allow or [], deny or []) or None,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls_ca": tls_ca,
        "insecure_http": insecure_http,
        "metrics_token": metrics_token,
    }
    settings = load_settings(ServerSettings, path=config, section="server", given=given)
    configure_logging(settings.log, daemon="server")
    serve(settings, config=config, given=given, from_environment=_from_environment())


def agent(
    server: Annotated[
        str | None,
        typer.Option(
            help="The server's URL; or several servers of one database, URL1,URL2,…: the"
            " agent goes on with the next when the one it works for does not answer.",
            envvar="FERRY_URL",
            show_default=False,
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="One-time registration secret; better from FERRY_AGENT_SECRET or"
            " --secret-file, which ps does not show.",
            envvar="FERRY_AGENT_SECRET",
            show_default=False,
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            help="Read the one-time secret from this file.",
            envvar="FERRY_AGENT_SECRET_FILE",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Agent token (default: the one kept in the data directory by the last"
            " registration).",
            envvar="FERRY_AGENT_TOKEN",
            show_default=False,
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            help="Trust the server's certificate by this CA (PEM); default: the system's CAs.",
            envvar="FERRY_CA",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Agent name (default: host name).")] = None,
    max_active: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Tasks copied at once (default 8).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Exit (status 0) after this many seconds with nothing to do; 0: never."),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="On SIGTERM, seconds active copies may finish (default 10)."),
    ] = None,
    bandwidth_timetable: Annotated[
        str | None,
        typer.Option(
            "--bandwidth-timetable",
            help="The agent's own bandwidth, for all its copies together: 'Mon-Fri 08:00,50M;"
            " 19:00,off' (or a rate alone, '50M'), in --timezone.",
            show_default=False,
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Time zone of --bandwidth-timetable (IANA name; default UTC)."),
    ] = None,
    stdin: Annotated[
        bool,
        typer.Option(
            "--stdin",
            help="Do one transfer request (JSON, the API's body) read from standard input, with"
            " no server, and write its outcomes as JSON; storages: local and --config's.",
        ),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    log_dir: LogDirOption = None,
    log_level: LogLevelOption = None,
) -> None:
    """Run a transfer agent: register with the server and move data for it. (`ferry agent
    pause|resume NAME` drains an agent or lets it lease again.)"""
    if stdin:
        from ferry.cli.copy import copy_request

        copy_request(sys.stdin.read(), config)
        return
    from ferry.agent.credentials import choose, token_file
    from ferry.agent.main import main as run_agent
    from ferry.config import AgentSettings
    from ferry.daemon.config import load_settings
    from ferry.daemon.logs import REDACTOR, configure_logging

    given: dict[str, Any] = {
        "server": server,
        "ca": ca,
        "name": name,
        "max_active": max_active,
        "timeout_s": timeout,
        "grace_s": grace,
        "bandwidth_timetable": bandwidth_timetable,
        "timezone": timezone,
        "data_dir": data_dir,
        "log": _log(log_dir, log_level),
    }

    def read() -> AgentSettings:
        settings = load_settings(AgentSettings, path=config, section="agent", given=given)
        if settings.name is None:
            settings = settings.model_copy(update={"name": socket.gethostname()})
        return settings

    settings = read()
    kept = token_file(settings.data_dir, settings.name or "agent")
    secret, token = choose(secret=secret, secret_file=secret_file, token=token, kept=kept)
    REDACTOR.add(secret or token or "")
    configure_logging(settings.log, daemon=f"agent-{settings.name}")
    from ferry.daemon.sources import SettingsOrigin

    origin = SettingsOrigin(config, "agent", given, "FERRY_AGENT_", _from_environment())
    raise SystemExit(run_agent(settings, secret=secret, token=token, reread=read, origin=origin))


def _from_environment() -> frozenset[str]:
    """The options of the command running that took their value from their variable (such
    as ``--server`` from ``FERRY_URL``): a source of their own for ``ferry admin config``."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    context = get_current_context()
    return frozenset(
        name
        for name in context.params
        if context.get_parameter_source(name) is ParameterSource.ENVIRONMENT
    )


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(agent)
