"""``/admin``: DaemonCore's remote commands, for administrators: reconfigure (SIGHUP), stop
(SIGTERM, or SIGQUIT with ``fast``), and tell a setting with its source, to the server itself
or, through it, to an agent. An agent's command waits for its next heartbeat and the request
for the agent's answer (``ferry.server.agent_commands``). Each call is audited."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, BackgroundTasks, Request, Response

from ferry.api.protocol import AgentCommand, AnswerReply, CommandAnswer, CommandKind, encode
from ferry.daemon.sources import SettingsOrigin, setting
from ferry.domain.states import AgentState
from ferry.domain.transfers import Agent
from ferry.errors import (
    AgentNotConnected,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
)
from ferry.server.admin_schemas import (
    AdminResult,
    AdminTarget,
    ConfigRequest,
    ConfigValue,
    OffRequest,
)
from ferry.server.audit_trail import note_target
from ferry.server.deps import Administrator, Daemon, StateDep
from ferry.server.state import ServerState

router = APIRouter(prefix="/admin", tags=["admin"])
answers = APIRouter(tags=["agents"])
log = logging.getLogger("ferry.daemon")

CONNECTED = (AgentState.REGISTERED, AgentState.ALIVE)
_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "No agent of that name, or no such setting"},
    409: {"description": "The agent is not connected (LOST, RETIRED, never registered)"},
    504: {"description": "The agent did not answer in time; it may still carry it out"},
}


@router.post("/reconfig", response_model=AdminResult, responses=_RESPONSES)
async def reconfig(
    state: StateDep, caller: Administrator, request: Request, body: AdminTarget | None = None
) -> AdminResult:
    """Read the configuration again and apply what can change while running (SIGHUP). 422:
    the file was refused, nothing changed."""
    target = body.agent if body else None
    note_target(request, target or "server")
    if target is not None:
        agent, answer = await _ask(state, target, AgentCommand(id="", kind=CommandKind.RECONFIG))
        return AdminResult(
            daemon=f"agent {agent.name}",
            command="reconfig",
            detail=answer.detail,
            changed=answer.changed,
        )
    changed = await _reconfigure_server(state, caller.name)
    detail = "reconfigured" if changed else "reconfigured; nothing changed"
    return AdminResult(daemon="server", command="reconfig", detail=detail, changed=changed)


async def _reconfigure_server(state: ServerState, asked_by: str) -> list[str]:
    """The keys SIGHUP's reload changed; ``InvalidRequest`` (422) when the file is refused."""
    from ferry.server.reload import apply_settings  # it needs the application's own module

    origin = _origin(state)
    try:
        return await apply_settings(
            state, origin.path, origin.given, cause="ferry admin reconfig", actor=asked_by
        )
    except ConfigError as exc:
        raise InvalidRequest(f"configuration not reloaded: {exc}") from None


@router.post("/off", response_model=AdminResult, responses=_RESPONSES)
async def off(
    state: StateDep,
    caller: Administrator,
    request: Request,
    stopping: BackgroundTasks,
    body: OffRequest | None = None,
) -> AdminResult:
    """Stop the daemon: gracefully as SIGTERM does, or with ``fast`` as SIGQUIT does. The
    answer comes first; a server stops once it has left."""
    body = body or OffRequest()
    note_target(request, body.agent or "server")
    how = "giving back every lease now" if body.fast else "finishing or giving back its work"
    if body.agent is not None:
        command = AgentCommand(id="", kind=CommandKind.OFF, fast=body.fast)
        agent, answer = await _ask(state, body.agent, command)
        return AdminResult(daemon=f"agent {agent.name}", command="off", detail=answer.detail)
    if state.stop_process is None:
        raise Conflict("this server was not started by `ferry server`: stop its process")
    log.warning("%s asked the server to stop (%s)", caller.name, how)
    stopping.add_task(_stop, state.stop_process, body.fast)
    return AdminResult(daemon="server", command="off", detail=f"stopping: {how}")


@router.post("/config", response_model=ConfigValue, responses=_RESPONSES)
async def config(
    body: ConfigRequest, state: StateDep, caller: Administrator, request: Request
) -> ConfigValue:
    """The value in force of the setting ``key`` (dotted: ``log.level``) and where it came
    from: the command line, the environment, the file, or the default. A secret's value is
    never told (``hidden``)."""
    note_target(request, f"{body.key} of {body.agent or 'server'}")
    if body.agent is None:
        found = setting(state.settings, _origin(state), body.key)
        return ConfigValue(daemon="server", **vars(found))
    command = AgentCommand(id="", kind=CommandKind.CONFIG, key=body.key)
    agent, answer = await _ask(state, body.agent, command)
    return ConfigValue(
        daemon=f"agent {agent.name}",
        key=body.key,
        value=answer.value,
        source=answer.source,
        hidden=answer.hidden,
    )


@answers.post("/agents/{agent_id}/answer", response_model=AnswerReply)
async def answer(agent_id: str, body: CommandAnswer, state: StateDep, caller: Daemon) -> Response:
    """An agent's answer to a command its heartbeat reply carried."""
    if caller.agent_id != agent_id:
        raise Forbidden("DAEMON of this agent")
    accepted = state.commands.answer(agent_id, body)
    return Response(encode(AnswerReply(accepted=accepted)), media_type="application/json")


async def _stop(stop_process: Callable[[bool], None], fast: bool) -> None:
    """Stop the process, on the event loop (a plain function would run in a thread)."""
    stop_process(fast)


def _origin(state: ServerState) -> SettingsOrigin:
    """Where the server's settings came from; only its file when not run by ``ferry server``."""
    return state.origin or SettingsOrigin(state.config, "server", {}, "FERRY_")


async def _ask(state: ServerState, name: str, command: AgentCommand) -> tuple[Agent, CommandAnswer]:
    """Relay ``command`` to the agent ``name`` (or id) and return it with its answer. Raises
    ``NotFound`` for no such agent, ``AgentNotConnected``, ``AgentDidNotAnswer``, or the
    agent's refusal as its status says."""
    agent = await _connected(state, name)
    wait = answer_wait_s(state.settings.heartbeat_s)
    log.info("relaying %s to agent %s", command.kind.value, agent.name)
    answer = await state.commands.ask(agent.id, agent.name, command, wait)
    if answer.ok:
        return agent, answer
    message = f"agent {agent.name}: {answer.detail}"
    if answer.status == 404:
        raise NotFound(message)
    if answer.status == 422:
        raise InvalidRequest(message)
    raise Conflict(message)


def answer_wait_s(heartbeat_s: float) -> float:
    """How long an administrator's request waits for an agent's answer: two heartbeats and
    some time to carry the command out."""
    return 2 * heartbeat_s + 10


async def _connected(state: ServerState, name: str) -> Agent:
    for agent in await state.store.list_agents():
        if name in (agent.name, agent.id):
            if agent.state not in CONNECTED:
                raise AgentNotConnected(agent.name, agent.state.value)
            return agent
    raise NotFound(f"agent {name!r} not found")
