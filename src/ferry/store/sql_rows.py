"""Rows of the SQL store made into domain objects: storages, transfers (their specs parsed once,
``SpecCache``), runs, tasks and agents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row

from ferry.domain.locations import parse_location
from ferry.domain.replicas import parse_sources
from ferry.domain.states import AgentState, RunStatus, TaskState, TransferStatus
from ferry.domain.sync import DeletionState
from ferry.domain.transfers import (
    Agent,
    Credentials,
    ListedThrough,
    Run,
    RunCounts,
    Storage,
    Task,
    Transfer,
    TransferKind,
    TransferOptions,
    TransferSpec,
)
from ferry.errors import SecretKeyError
from ferry.store.crypto import Cipher


def storage_from_row(row: Row[Any], cipher: Cipher | None) -> Storage:
    credentials = Credentials()
    if row.credentials:
        if cipher is None:
            raise SecretKeyError("stored credentials cannot be read: no secret key was given")
        credentials = Credentials(cipher.decrypt(row.credentials))
    return Storage(
        name=row.name,
        url=row.url,
        site=row.site,
        options=dict(row.options),
        credentials=credentials,
        health=dict(row.health) if row.health else None,
    )


def spec_from_json(data: dict[str, Any]) -> TransferSpec:
    sources, replicas = parse_sources(data["sources"])
    return TransferSpec(
        kind=TransferKind(data["kind"]),
        sources=sources,
        destination=parse_location(data["destination"]),
        options=TransferOptions.from_json(data.get("options", {})),
        replicas=replicas,
    )


class SpecCache:
    """Transfers' specs, parsed once: a spec never changes after its submission, and a page of
    fifty transfers spent a third of its time parsing theirs again (≈ 18 µs each: locations,
    options, frozen dataclasses). Keyed by the transfer's id, up to ``limit`` of them, the
    oldest forgotten first."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._specs: dict[str, TransferSpec] = {}

    def spec_of(self, transfer_id: str, data: dict[str, Any]) -> TransferSpec:
        spec = self._specs.get(transfer_id)
        if spec is None:
            spec = spec_from_json(data)
            if len(self._specs) >= self.limit:
                del self._specs[next(iter(self._specs))]
            self._specs[transfer_id] = spec
        return spec


def transfer_from_row(row: Row[Any], specs: SpecCache) -> Transfer:
    """A transfer from its row, its spec from ``specs``. The row's values are read through its
    mapping: a field of a ``Row`` read as an attribute cost ≈ 0.3 µs, four times a key of its
    mapping, and a page of transfers read two dozen of them per transfer and its latest run."""
    values = row._mapping
    return Transfer(
        id=values["id"],
        scope=values["scope"],
        submitter=values["submitter"],
        spec=specs.spec_of(values["id"], values["spec"]),
        schedule=dict(values["schedule"]),
        status=_TRANSFER_STATUS[values["status"]],
        created_at=values["created_at"],
        next_run_at=values["next_run_at"],
        runs=values["runs"],
        error=values["error"],
        submission_id=values["submission_id"],
        paused_at=values["paused_at"],
        pause_stops=values["pause_stops"],
    )


def run_from_row(row: Row[Any]) -> Run:
    return run_from_mapping(row._mapping)


def run_from_mapping(row: Mapping[Any, Any]) -> Run:
    return Run(
        transfer_id=row["transfer_id"],
        number=row["number"],
        status=_RUN_STATUS[row["status"]],
        due_at=row["due_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        expanded=bool(row["expanded"]),
        counts=RunCounts(
            total=row["total"],
            done=row["done"],
            failed=row["failed"],
            skipped=row["skipped"],
            canceled=row["canceled"],
            bytes=row["bytes"],
            filtered=row["filtered"],
            deleted=row["deleted"],
            deleted_bytes=row["deleted_bytes"],
        ),
        error=row["error"],
        occurrences=row["occurrences"],
        skipped_occurrences=row["skipped_occurrences"],
        size_total=row["size_total"],
        last_result_at=row["last_result_at"],
        listed=_listed(row["listed_source"], row["listed_through"]),
        numbered=row["next_object"] is not None,
        deadline_at=row["deadline_at"],
        past_deadline=bool(row["past_deadline"]),
        deletion=DeletionState(row["deletion"]) if row["deletion"] else None,
        deletion_note=row["deletion_note"],
    )


def _listed(source: int | None, cursor: str | None) -> ListedThrough | None:
    return None if source is None or cursor is None else ListedThrough(source, cursor)


# A stored status, looked up: making an enum member from its value is a call through the enum's
# metaclass, twice per transfer of a page.
_TRANSFER_STATUS = {status.value: status for status in TransferStatus}
_RUN_STATUS = {status.value: status for status in RunStatus}


def task_from_row(row: Row[Any]) -> Task:
    return Task(
        id=row.id,
        transfer_id=row.transfer_id,
        run=row.run,
        state=TaskState(row.state),
        source=parse_location(row.source),
        destination=parse_location(row.destination),
        size=row.size,
        bytes_done=row.bytes_done,
        checksum=row.checksum,
        attempts=row.attempts,
        error_class=row.error_class,
        error=row.error,
    )


def agent_from_row(row: Any) -> Agent:
    return Agent(
        id=row.id,
        name=row.name,
        host=row.host,
        state=AgentState(row.state),
        capabilities=dict(row.capabilities),
        last_heartbeat=row.last_heartbeat,
        status=dict(row.status),
        paused_at=row.paused_at,
    )
