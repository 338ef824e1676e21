"""Typed settings, validated once and passed explicitly; built only at entry points.

Each daemon reads, from the highest priority down: its command-line options, ``FERRY_*``
environment variables, its section of the TOML file given with ``--config`` (``[server]`` or
``[agent]``), and the defaults here. See ``ferry.daemon.config``."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from pydantic import (
    BaseModel,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry.domain.locations import is_storage_name
from ferry.domain.timetable import Timetable, zone
from ferry.errors import InvalidRequest

SUBSYSTEMS = (
    "ferry",
    "ferry.api",
    "ferry.scheduler",
    "ferry.agent",
    "ferry.engine",
    "ferry.security",
    "ferry.daemon",
)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LogSettings(BaseModel):
    """Where and how much a daemon logs: stderr always; with ``dir``, also a file of its own
    (``server.log``, ``agent-NAME.log``) rotated at ``max_bytes``, ``backups`` kept."""

    model_config = {"extra": "forbid"}

    dir: Path | None = None
    level: str = "INFO"
    levels: dict[str, str] = Field(default_factory=dict, description="per subsystem")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    backups: int = Field(5, ge=0, le=1000)

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        return _level(value)

    @field_validator("levels")
    @classmethod
    def _known_subsystems(cls, value: dict[str, str]) -> dict[str, str]:
        for name, level in value.items():
            if name not in SUBSYSTEMS:
                raise ValueError(f"unknown subsystem {name!r}: one of {', '.join(SUBSYSTEMS)}")
            value[name] = _level(level)
        return value


def _level(value: str) -> str:
    if value.upper() not in LEVELS:
        raise ValueError(f"{value!r} is not a level: one of {', '.join(LEVELS)}")
    return value.upper()


ROLES = ("READ", "WRITE", "ADMINISTRATOR", "DAEMON")


class AccessRules(BaseModel):
    """Where the callers of one role may come from (DaemonCore's ALLOW/DENY): an address in a
    ``deny`` network is refused; otherwise, it is accepted when ``allow`` is empty or holds it."""

    model_config = {"extra": "forbid"}

    allow: list[IPvAnyNetwork] = Field(default_factory=list)
    deny: list[IPvAnyNetwork] = Field(default_factory=list)


class ServerSettings(BaseSettings):
    """``ferry server``."""

    model_config = SettingsConfigDict(
        env_prefix="FERRY_", extra="forbid", env_nested_delimiter="__"
    )

    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)
    data_dir: Path = Path(".ferry")
    db: str | None = None  # SQLAlchemy URL; default: SQLite in data_dir
    agents: int = Field(2, ge=0, le=64)
    # Local agents are named PREFIX-1, PREFIX-2, …: by default "local" on SQLite (one server to
    # a database) and HOST-PORT on a database that several servers may share, where each
    # server's agents need names of their own (two local-1s revoked each other's tokens).
    agent_prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_.@-]{1,100}$")
    agent_max_active: int = Field(8, ge=1, le=1024)
    local_root: Path = Field(default_factory=Path.cwd)
    storages: dict[str, str] = Field(default_factory=dict)
    # Hosts (fnmatch patterns) whose URLs transfers may name without a registered storage.
    allow_unregistered: list[str] = Field(default_factory=list)
    lease_ttl_s: float = Field(30.0, gt=0)
    heartbeat_s: float = Field(5.0, gt=0)
    # An agent silent for this long is LOST and its leases are released (DESIGN §11: seconds,
    # not FTS's two-hour sanity check).
    agent_lost_after_s: float = Field(30.0, gt=0)
    health_check_fast_s: float = Field(10.0, gt=0)  # storage health checks, first minute
    health_check_s: float = Field(60.0, gt=0)  # and then
    notify_retry_s: float = Field(10.0, gt=0)  # first backoff of a failed finalize hook
    optimizer_window_s: float = Field(5.0, ge=1, le=600)  # the link optimizer's window
    log: LogSettings = Field(default_factory=LogSettings)
    hung_timeout_s: float = Field(60.0, gt=0)  # a local agent silent that long is replaced
    grace_s: float = Field(10.0, ge=0)  # how long stopping agents may finish their copies
    # Per role of the caller (READ, WRITE, ADMINISTRATOR, DAEMON for agents).
    access: dict[str, AccessRules] = Field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # What local agents trust the server's certificate by: default, the certificate itself.
    tls_ca: Path | None = None
    insecure_http: bool = False  # listen on a non-loopback address without TLS all the same
    # The bearer token /metrics asks for; none: anyone may scrape it.
    metrics_token: SecretStr | None = Field(None, min_length=1)

    @field_validator("access")
    @classmethod
    def _known_roles(cls, value: dict[str, AccessRules]) -> dict[str, AccessRules]:
        for role in value:
            if role.upper() not in ROLES:
                raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        return {role.upper(): rules for role, rules in value.items()}

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        return self

    @field_validator("storages")
    @classmethod
    def _names_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not is_storage_name(name):
                raise ValueError(f"{name!r} is not a valid storage name")
        return value

    @field_validator("db")
    @classmethod
    def _db_is_shared(cls, value: str | None) -> str | None:
        from ferry.store.sql_base import is_in_memory_sqlite  # the server's own, loaded late

        if value is not None and is_in_memory_sqlite(value):
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the server's connections;"
                " give it a file (sqlite+aiosqlite:///path/ferry.db) or leave it out"
            )
        return value

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ferry.db').resolve()}"

    @property
    def local_agent_prefix(self) -> str:
        if self.agent_prefix:
            return self.agent_prefix
        if self.db_url.startswith("sqlite"):
            return "local"
        return f"{socket.gethostname().split('.')[0]}-{self.port}"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def agent_host(self) -> str:
        """The host local agents reach this server at: loopback when listening on every
        address (so a certificate must name 127.0.0.1 for them)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104

    @property
    def agent_server_url(self) -> str:
        host = self.agent_host
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        """Whether the server listens on a loopback address only (a name other than
        ``localhost`` counts as not loopback: what it resolves to may change)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class AgentSettings(BaseSettings):
    """``ferry agent``. Its secret and token come from the command line or the environment
    (``FERRY_AGENT_SECRET``, ``FERRY_AGENT_TOKEN``), never from the file."""

    model_config = SettingsConfigDict(
        env_prefix="FERRY_AGENT_", extra="forbid", env_nested_delimiter="__"
    )

    server: str = "http://127.0.0.1:8470"  # or several: URL1,URL2,… (servers of one database)
    ca: Path | None = None  # the CA that signed the server's certificate; default: the system's
    name: str | None = None
    max_active: int = Field(8, ge=1, le=1024)
    timeout_s: float = Field(0.0, ge=0)  # exit after this long with nothing to do; 0: never
    grace_s: float = Field(10.0, ge=0)
    data_dir: Path = Path(".ferry")
    # An object this large whose copy dies keeps its .part for the next attempt to continue
    # (docs/operations.md, "A large copy interrupted"). Tests lower it to resume small files.
    resume_min_bytes: int = Field(64 * 1024 * 1024, ge=1)
    # The agent's own bandwidth, for all its copies together, as a timetable read in
    # ``timezone`` ("Mon-Fri 08:00,50M; 19:00,off", or a rate alone: "50M"); None: no limit.
    bandwidth_timetable: str | None = None
    timezone: str = "UTC"
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("bandwidth_timetable")
    @classmethod
    def _a_timetable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return Timetable.parse(value).text
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _a_time_zone(cls, value: str) -> str:
        try:
            zone(value)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("server")
    @classmethod
    def _servers_are_urls(cls, value: str) -> str:
        return ",".join(server_list(value))

    @property
    def servers(self) -> list[str]:
        """The servers to work for, in the order to try them (``server`` split)."""
        return self.server.split(",")


def server_list(text: str) -> list[str]:
    """The servers of ``URL1,URL2,…``, in order, without a trailing slash; raises ``ValueError``
    for an empty list, a duplicate, or one that is not an http(s) URL with a host."""
    servers = [part.strip().rstrip("/") for part in text.split(",")]
    for server in servers:
        scheme, sep, rest = server.partition("://")
        if scheme not in ("http", "https") or not sep or not rest.split("/")[0]:
            raise ValueError(f"{server!r} is not a server's URL (http://host:port or https://…)")
    if len(set(servers)) != len(servers):
        raise ValueError(f"a server is given twice in {text!r}")
    return servers
