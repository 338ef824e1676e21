"""Remote agents in the reliability scenarios: started by hand (in a network namespace if
asked), what each holds of a transfer, and whether it was heard from since a moment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from daemon_support import AgentProcess, Daemons, agent_named, wait_agent
from e2e_support import ServerProcess


def start_agent(
    daemons: Daemons, server: ServerProcess, name: str, netns: str | None = None
) -> tuple[AgentProcess, str]:
    """A remote agent ``name`` (inside network namespace ``netns`` if given) registered and
    heard from; its process and its agent id."""
    secret = server.cli_json("agent-invite", name)["secret"]
    agent = daemons.agent(server, name, "--secret", secret, netns=netns)
    return agent, wait_agent(server, name, agent.pid)["id"]


def copying(server: ServerProcess, transfer_id: str, agent_id: str) -> int:
    """How many of the transfer's objects ``agent_id`` holds now (ACTIVE under its lease)."""
    path = f"/api/v1/transfers/{transfer_id}/outcomes"
    active = server.api("GET", path, params={"status": "ACTIVE", "limit": 10_000}).json()
    return sum(1 for o in active["objects"] if o["agent"] == agent_id)


def heard_since(server: ServerProcess, name: str, since: datetime) -> dict[str, Any] | None:
    """Agent ``name``'s record once a heartbeat of it arrived after ``since``."""
    agent = agent_named(server, name)
    if agent is None or agent["last_heartbeat"] is None:
        return None
    return agent if datetime.fromisoformat(agent["last_heartbeat"]) > since else None


def idle_since(server: ServerProcess, name: str, since: datetime) -> dict[str, Any] | None:
    """Agent ``name``'s record once a heartbeat said it holds nothing, one received a second
    after ``since`` at least: sent after ``since`` whatever its heartbeat period (0.5 s here)."""
    agent = heard_since(server, name, since + timedelta(seconds=1))
    return agent if agent and agent["status"].get("outstanding") == 0 else None


def reported_late(agent: dict[str, Any], agent_id: str, objects: list[dict[str, Any]]) -> int:
    """How many objects the agent reported DONE, by its own count (every report the server
    answered), beyond the DONE attempts the outcomes ``objects`` credit it with: copied and
    reported after their leases lapsed, and ignored. (Objects it had not finished are
    reported CANCELED, not counted here.)"""
    credited = sum(
        1 for o in objects for a in o["history"] if (a["agent"], a["state"]) == (agent_id, "DONE")
    )
    return int(agent["status"]["stats"].get("DONE", 0)) - credited
