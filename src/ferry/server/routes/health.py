"""Operations: liveness."""

from __future__ import annotations

from fastapi import APIRouter

from ferry import __version__
from ferry.server.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Needs no token: load balancers and supervisors call it."""
    return Health(status="ok", version=__version__)
