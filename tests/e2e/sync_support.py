"""What the end-to-end tests of sync levels and --delete-extra share: a folder's files, a
run's objects, and a dry run's plan as those objects would record it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e_support import ServerProcess

STATE_OF = {"copy": "DONE", "skip": "SKIPPED", "fail": "FAILED", "delete": "DELETED"}


def held(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def outcomes(ferry: ServerProcess, transfer_id: str) -> list[dict[str, Any]]:
    return list(ferry.cli_json("outcomes", transfer_id)["objects"])


def as_done(plan: dict[str, Any]) -> set[tuple[str, str, str, str | None]]:
    """The plan's entries as the run's objects would record them."""
    return {
        (
            STATE_OF[e["action"]],
            e["source"],
            e["destination"],
            e["reason"] if e["action"] in ("skip", "delete") else None,
        )
        for e in plan["entries"]
    }


def as_recorded(objects: list[dict[str, Any]]) -> set[tuple[str, str, str, str | None]]:
    return {
        (
            o["status"],
            o["source"],
            o["destination"],
            o["error"] if o["status"] in ("SKIPPED", "DELETED") else None,
        )
        for o in objects
    }
