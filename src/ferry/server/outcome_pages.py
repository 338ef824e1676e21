"""A page of outcomes (``GET /transfers/{id}/outcomes``) written as JSON straight from the
store's objects.

A page holds up to ten thousand objects, each with its attempts. Made into ``ObjectOutcome``
models, validated, dumped to dictionaries, validated again against the route's model and
written by the standard library, a page cost more than reading it from the store did
(bench/findings.md). This writes the same document, field for field, with
orjson; ``schemas.Outcomes`` stays the route's documented model, and a test holds the two to
the same output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ferry.store.abc import Attempt, RunObject


def outcomes_page(
    transfer_id: str, run: int, status: str, objects: Sequence[RunObject], limit: int
) -> bytes:
    """The body of a page of ``objects`` (at most ``limit``) of run ``run``, whose status is
    ``status``: an ``Outcomes`` document."""
    page = {
        "transfer": transfer_id,
        "run": run,
        "status": status,
        "started": True,
        "message": None,
        "objects": [_object(obj) for obj in objects],
        "next_cursor": str(objects[-1].number) if len(objects) == limit else None,
    }
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)


def _object(obj: RunObject) -> dict[str, Any]:
    """An ``ObjectOutcome``."""
    return {
        "id": obj.number,
        "source": str(obj.source),
        "destination": str(obj.destination),
        "size": obj.size,
        "bytes": obj.bytes_done,
        "checksum": obj.checksum,
        "status": obj.state.value,
        "attempts": obj.attempts,
        "error_class": obj.error_class,
        "error": obj.error,
        "agent": obj.agent,
        "replica": str(obj.replica) if obj.replica is not None else None,
        "history": [_attempt(attempt) for attempt in obj.history],
    }


def _attempt(attempt: Attempt) -> dict[str, Any]:
    """An ``AttemptPublic``."""
    return {
        "number": attempt.number,
        "state": attempt.state,
        "agent": attempt.agent,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "bytes": attempt.bytes,
        "error_class": attempt.error_class,
        "error": attempt.error,
    }
