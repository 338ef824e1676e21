"""Typed settings, validated once and passed explicitly; built only at entry points."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry.domain.locations import is_storage_name


class ServerSettings(BaseSettings):
    """``ferry server``: command-line options override ``FERRY_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)
    data_dir: Path = Path(".ferry")
    db: str | None = None  # SQLAlchemy URL; default: SQLite in data_dir
    agents: int = Field(2, ge=0, le=64)
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
    log_level: str = "INFO"

    @field_validator("storages")
    @classmethod
    def _names_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not is_storage_name(name):
                raise ValueError(f"{name!r} is not a valid storage name")
        return value

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ferry.db').resolve()}"

    @property
    def agent_server_url(self) -> str:
        """Where local agents reach this server: loopback when listening on every address."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"
