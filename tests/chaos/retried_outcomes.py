"""The outcomes check of scenarios whose objects fail and are retried (a damaged read, a full
disk): every object of the run ended exactly once, DONE, as its last attempt; the attempts
before it failed and were retried, none of them moved the object (no DONE or SKIPPED before
the last)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos_check import outcomes
from e2e_support import ServerProcess

MOVED = ("DONE", "SKIPPED")
RETRIED = ("FAILED", "LOST", "STOPPED")  # an attempt that ended so went back to the queue


def ended_once_after_retries(
    server: ServerProcess, transfer_id: str, files: int
) -> list[dict[str, Any]]:
    """Check the run's outcomes as above; return its objects (with their ``history``)."""
    counts = server.api("GET", f"/api/v1/transfers/{transfer_id}").json()["objects"]
    assert counts["done"] == counts["total"] == files, counts
    objects = outcomes(server, transfer_id)
    assert len(objects) == files, f"{len(objects)} objects in the outcomes, {files} files"
    numbers = Counter(o["id"] for o in objects)
    assert max(numbers.values()) == 1, [n for n, seen in numbers.items() if seen > 1][:5]
    for obj in objects:
        states = [attempt["state"] for attempt in obj["history"]]
        assert obj["status"] == "DONE", obj
        assert states[-1] == "DONE", obj
        assert all(state in RETRIED for state in states[:-1]), obj
    return objects


def retried_attempts(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The attempts of an object that ended without moving it (all but its last)."""
    return list(obj["history"][:-1])
