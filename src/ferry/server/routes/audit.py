"""The audit trail (issue 19, part 5), for administrators: the records of state-changing
calls, newest last, and a walk of their hash chain that names the first record changed or
removed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from ferry.api.schemas import AuditCheckPublic, AuditRecordPublic
from ferry.errors import InvalidRequest
from ferry.server.deps import Administrator, StateDep
from ferry.store.abc import AuditRecord

router = APIRouter(tags=["audit"])
# A time as ISO 8601 writes it: a number is not one (pydantic would read 0.5 as a Unix time).
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$"


@router.get("/audit", response_model=list[AuditRecordPublic])
async def list_audit(
    state: StateDep,
    caller: Administrator,
    user: Annotated[str | None, Query(max_length=128, description="whose acts")] = None,
    since: Annotated[
        str | None, Query(pattern=ISO_8601, description="at or after (ISO 8601; UTC if no zone)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AuditRecordPublic]:
    """The last ``limit`` records (of ``user``, since ``since``), oldest first."""
    found = await state.store.list_audit(actor=user, since=_utc(since), limit=limit)
    return [_public(record) for record in found]


@router.get("/audit/verify", response_model=AuditCheckPublic)
async def verify_audit(state: StateDep, caller: Administrator) -> AuditCheckPublic:
    """Walk the chain from its first record; ``ok`` false names the first that does not hold."""
    check = await state.store.verify_audit()
    return AuditCheckPublic(
        ok=check.first_bad is None,
        records=check.records,
        head=check.head,
        first_bad=check.first_bad,
        why=check.why,
    )


def _utc(since: str | None) -> datetime | None:
    """A time without a zone is UTC, as every time the API gives."""
    if since is None:
        return None
    try:
        instant = datetime.fromisoformat(since)
        return instant.replace(tzinfo=instant.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"since {since!r}: not a time, or out of range") from None


def _public(record: AuditRecord) -> AuditRecordPublic:
    entry = record.entry
    return AuditRecordPublic(
        seq=record.seq,
        at=record.at,
        actor=entry.actor,
        role=entry.role,
        address=entry.address,
        action=entry.action,
        params=entry.params,
        status=entry.status,
        target=entry.target,
        prev_hash=record.prev_hash,
        hash=record.hash,
    )
