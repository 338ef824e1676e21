"""The dashboard's acts in the audit trail, as the API's are (the trail's middleware records
only the API's paths)."""

from __future__ import annotations

from fastapi import Request

from ferry.server.audit_trail import record
from ferry.server.state import ServerState
from ferry.server.ui.sessions import Viewer
from ferry.store.abc import AuditEntry


async def record_act(
    request: Request, state: ServerState, viewer: Viewer, act: str, status: int, target: str
) -> None:
    principal = viewer.principal
    await record(
        state.store,
        AuditEntry(
            actor=principal.name,
            role=principal.role.value,
            address=request.client.host[:64] if request.client is not None else None,
            action=f"dashboard {act}",
            status=status,
            target=target,
        ),
    )
