"""Operations: liveness, and whether the database takes writes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ferry import __version__
from ferry.api.schemas import Health
from ferry.server.deps import StateDep
from ferry.server.problems import RETRY_AFTER, database_trouble

router = APIRouter(tags=["operations"])

STORE_CHECK_S = 5.0


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(state: StateDep) -> Health | JSONResponse:
    """Needs no token: load balancers and supervisors call it. 503 while the database cannot
    take a write (locked by another process, its disk full, unreachable): a server that
    cannot record anything is not one to send work to."""
    try:
        await asyncio.wait_for(state.store.check_writable(), STORE_CHECK_S)
    except Exception as exc:
        cause = database_trouble(exc)
        unavailable = Health(status="unavailable", version=__version__, store=cause)
        return JSONResponse(unavailable.model_dump(), status_code=503, headers=RETRY_AFTER)
    return Health(status="ok", version=__version__, store="ok")
