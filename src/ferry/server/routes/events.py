"""``GET /api/v1/events``: server-sent events of transfer, run and object state changes, and,
for one transfer, its progress every second while it runs. A user hears only of the transfers
of its scopes; an administrator of all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ferry.domain.events import Event, EventKind, ProgressReported, TransferChanged
from ferry.domain.states import RunStatus, TransferStatus
from ferry.domain.transfers import Role, run_progress
from ferry.errors import NotFound
from ferry.server.deps import Reader, StateDep
from ferry.server.routes.transfers import resolve_id, visible_to
from ferry.server.state import ServerState
from ferry.store.abc import Principal, TransferStore, TransferWithRun

router = APIRouter(tags=["events"])

PROGRESS_EVERY_S = 1.0
KEEPALIVE_S = 15.0
# A comment (clients skip it) once the stream hears every change: what a follower waits for
# before it acts, so that it cannot miss the change its act causes.
LISTENING = ": listening\n\n"
SCOPES_KEPT = 10_000  # transfers whose visibility one stream remembers
# A transfer in one of these never changes again (a periodic one is STANDBY between its runs):
# the stream of that transfer ends after saying so.
ENDED = frozenset(
    s.value
    for s in (
        TransferStatus.COMPLETED,
        TransferStatus.COMPLETED_WITH_ERRORS,
        TransferStatus.FAILED,
        TransferStatus.CANCELED,
    )
)


class Audience:
    """Whether an event may reach ``caller``: one of a transfer outside its scopes may not.
    Each transfer's scope is read once per stream."""

    def __init__(self, store: TransferStore, caller: Principal) -> None:
        self._store = store
        self._scopes = None if caller.role is Role.ADMINISTRATOR else frozenset(caller.scopes)
        self._seen: dict[str, bool] = {}

    async def hears(self, event: Event) -> bool:
        transfer = getattr(event, "transfer", None)
        if self._scopes is None or transfer is None:
            return True
        if (known := self._seen.get(transfer)) is not None:
            return known
        try:
            visible = (await self._store.get_transfer(transfer)).scope in self._scopes
        except NotFound:
            visible = False
        if len(self._seen) >= SCOPES_KEPT:
            self._seen.clear()
        self._seen[transfer] = visible
        return visible


def _frame(event: Event) -> str:
    return f"event: {event.kind}\ndata: {orjson.dumps(event.to_json()).decode()}\n\n"


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        404: {"description": "No transfer of that id"},
        409: {"description": "A short id that starts more than one transfer's id"},
    },
)
async def events(
    state: StateDep,
    caller: Reader,
    transfer: Annotated[str | None, Query(max_length=36, description="only this transfer")] = None,
    kind: Annotated[
        list[EventKind] | None,
        Query(description="only these kinds, repeated (``lagged`` always comes)"),
    ] = None,
) -> StreamingResponse:
    """A stream of ``event: KIND`` / ``data: JSON`` frames (kinds: transfer, run, run.late,
    run.skipped, tasks, progress, agent, transfer.paused, transfer.resumed, agent.paused,
    agent.resumed, channel.optimized, lagged). With ``transfer``, it starts with that
    transfer's current status and ends after its final one (COMPLETED,
    COMPLETED_WITH_ERRORS, FAILED or CANCELED). The comment ``: listening`` says that from
    there on no change is missed."""
    kinds = frozenset(kind) if kind else None  # None: every kind, a kind added later too
    first: list[Event] = []
    if transfer is not None:
        transfer = await resolve_id(state, caller, transfer)
        # 404 for an unknown transfer, and for one of another scope
        current = visible_to(caller, await state.store.get_transfer(transfer))
        if _wanted("transfer", kinds):
            first.append(
                TransferChanged(
                    transfer=current.id, status=current.status.value, error=current.error
                )
            )
    return StreamingResponse(
        _stream(state, transfer, kinds, first, Audience(state.store, caller)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    state: ServerState,
    transfer: str | None,
    kinds: frozenset[str] | None,
    first: list[Event],
    audience: Audience,
) -> AsyncIterator[str]:
    last_status = None
    for event in first:
        last_status = getattr(event, "status", last_status)
        yield _frame(event)
    subscription = state.wakeups.events.subscribe(transfer, kinds)
    tick = PROGRESS_EVERY_S if transfer is not None else KEEPALIVE_S
    pending: asyncio.Task[Event] | None = asyncio.ensure_future(anext(subscription))
    try:
        await asyncio.sleep(0)  # the subscription is in place: the task ran up to its first wait
        yield LISTENING
        # A change made since the first frame was read was never published to this
        # subscription: the status is read again, and then at every tick.
        if transfer is not None and (
            changed := _status_change(
                await state.store.get_transfer_with_run(transfer), last_status, kinds
            )
        ):
            last_status = changed.status
            yield _frame(changed)
        while not state.stopping.is_set() and last_status not in ENDED:
            if pending is None:
                pending = asyncio.ensure_future(anext(subscription))
            done, _ = await asyncio.wait({pending}, timeout=tick)
            if pending in done:
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                if not await audience.hears(event):
                    continue
                if isinstance(event, TransferChanged):
                    last_status = event.status
                yield _frame(event)
            elif transfer is not None:
                seen = await state.store.get_transfer_with_run(transfer)
                if changed := _status_change(seen, last_status, kinds):
                    last_status = changed.status
                    yield _frame(changed)
                elif _wanted("progress", kinds) and (progress := _progress(seen, state.clock())):
                    yield _frame(progress)
            else:
                yield ": keep-alive\n\n"
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await subscription.aclose()


def _status_change(
    seen: TransferWithRun, last_status: str | None, kinds: frozenset[str] | None
) -> TransferChanged | None:
    """The transfer's status as an event, when it is not ``last_status`` and is wanted."""
    current = seen.transfer
    if current.status.value == last_status or not _wanted("transfer", kinds):
        return None
    return TransferChanged(transfer=current.id, status=current.status.value, error=current.error)


def _wanted(kind: str, kinds: frozenset[str] | None) -> bool:
    return kinds is None or kind in kinds


def _progress(seen: TransferWithRun, now: datetime) -> ProgressReported | None:
    run = seen.run
    if run is None or run.status is not RunStatus.ONGOING:
        return None
    moving = run_progress(run, seen.active_bytes, now)
    return ProgressReported(transfer=seen.transfer.id, run=run.number, **asdict(moving))
