"""The wire records of ``/admin`` (``ferry admin``): an administrator's commands to the server
or, through it, to an agent, and their answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AgentName = Field(
    None,
    min_length=1,
    max_length=100,
    description="the agent (name or id) to relay the command to; none: the server itself",
)


class AdminTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = AgentName


class OffRequest(AdminTarget):
    fast: bool = Field(
        False,
        description="give back every lease at once and exit (SIGQUIT); without it, stop"
        " leasing, let copies finish within the grace period, give back the rest (SIGTERM)",
    )


class ConfigRequest(AdminTarget):
    key: str = Field(
        min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$", description="log.level"
    )


class AdminResult(BaseModel):
    daemon: str = Field(description="server, or agent NAME")
    command: Literal["reconfig", "off"]
    detail: str
    changed: list[str] = Field(default_factory=list, description="reconfig: the keys changed")


class ConfigValue(BaseModel):
    daemon: str = Field(description="server, or agent NAME")
    key: str
    value: Any = Field(description="none when hidden")
    source: Literal["command line", "environment", "file", "default"]
    hidden: bool = Field(description="a secret: it is set, its value is never told")
