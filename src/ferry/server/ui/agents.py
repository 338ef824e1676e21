"""The dashboard's agents: state, last heartbeat, held and active work; the table refreshes
itself every few seconds (htmx polling its own fragment)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ferry.domain.states import AgentState
from ferry.server.deps import StateDep
from ferry.server.ui.render import page
from ferry.server.ui.sessions import ViewerDep

router = APIRouter()

REFRESH_S = 1  # a LOST agent shows within a second of the server knowing it


@router.get("/agents")
async def agents_page(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _agents(request, state, viewer, "agents.html")


@router.get("/agents/table")
async def agents_table(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    return await _agents(request, state, viewer, "agents_table.html")


async def _agents(request: Request, state: StateDep, viewer: ViewerDep, name: str) -> Response:
    agents = [a for a in await state.store.list_agents() if a.state is not AgentState.RETIRED]
    stats = await state.store.agent_statistics([a.id for a in agents])
    return page(
        request,
        name,
        viewer,
        agents=sorted(agents, key=lambda a: a.name),
        stats=stats,
        now=state.clock(),
        refresh_s=REFRESH_S,
    )
