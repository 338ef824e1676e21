"""The asynchronous client: ``Client``'s twin, method for method."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from ferry.api.schemas import (
    AgentInvitation,
    AgentPublic,
    AgentStatsPublic,
    CancelResult,
    ChannelPublic,
    GrantPublic,
    ObjectResult,
    Outcomes,
    PassiveCreated,
    PauseResult,
    PlanPublic,
    RunPublic,
    ScopePublic,
    StoragePublic,
    TransferList,
    TransferPublic,
)
from ferry.client._base import (
    FINAL_STATUSES,
    PASSIVE_ATTEMPTS,
    RUNS_PAGE,
    WAIT_KINDS,
    Request,
    ends_wait,
    left,
    pause_request,
)
from ferry.client._typed import TypedClient, merge_outcome_pages
from ferry.client.local import (
    BLOCK,
    LocalObject,
    PulledFile,
    checksum_of,
    objects_to_push,
    read_blocks,
)
from ferry.client.tls import tls_context
from ferry.domain.options import Checksum
from ferry.errors import ApiError, ChecksumMismatch


class AsyncClient(TypedClient):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca: Path | None = None,
    ) -> None:
        super().__init__(url, token, data_dir, ca)
        verify = tls_context(self.ca) if self.ca else True
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, transport=transport, verify=verify
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, request: Request) -> Any:
        response = await self._http.request(
            request.method,
            request.path,
            json=request.json,
            params=request.params,
            headers=self._headers(),
        )
        return self.parse(response)

    async def health(self) -> dict[str, Any]:
        return dict(self.parse(await self._http.get("/healthz")))

    async def submit(
        self,
        sources: Sequence[str | Sequence[str]],
        destination: str,
        *,
        tree: bool = False,
        submission_id: str | None = None,
        schedule: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        scope: str | None = None,
    ) -> TransferPublic:
        request = self.submit_request(
            sources,
            destination,
            tree=tree,
            submission_id=submission_id,
            schedule=schedule,
            options=options,
            scope=scope,
        )
        return self.parse_transfer(await self._send(request))

    async def runs(self, transfer_id: str) -> list[RunPublic]:
        found: list[RunPublic] = []
        while True:
            params = {"after": found[-1].number if found else 0}
            request = Request("GET", f"/api/v1/transfers/{transfer_id}/runs", params=params)
            page = self.parse_runs(await self._send(request))
            found += page
            if len(page) < RUNS_PAGE:
                return found

    async def plan(
        self, sources: Sequence[str | Sequence[str]], destination: str, **submission: Any
    ) -> PlanPublic:
        """A dry run of a submission (``submit``'s arguments): the plan, nothing stored."""
        request = self.plan_request(sources, destination, **submission)
        return self.parse_plan(await self._send(request))

    async def next_plan(self, transfer_id: str) -> PlanPublic:
        """What the transfer's next run would do if it began now."""
        return self.parse_plan(await self._send(self.next_plan_request(transfer_id)))

    async def get(self, transfer_id: str) -> TransferPublic:
        return self.parse_transfer(
            await self._send(Request("GET", f"/api/v1/transfers/{transfer_id}"))
        )

    async def list(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> TransferList:
        """One page, newest first; ``filters``: status, kind, submitter, scope, schedule, label."""
        return self.parse_list(
            await self._send(self.list_request(limit=limit, cursor=cursor, **filters))
        )

    async def list_all(self, **filters: str | None) -> builtins.list[TransferPublic]:
        """Every matching transfer, following the cursor."""
        found: builtins.list[TransferPublic] = []
        cursor = None
        while True:
            page = await self.list(limit=1000, cursor=cursor, **filters)
            found += page.items
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def agents(self) -> builtins.list[AgentPublic]:
        return self.parse_agents(await self._send(Request("GET", "/api/v1/agents")))

    async def invite_agent(self, name: str, *, ttl_s: float = 3600) -> AgentInvitation:
        """A one-time registration secret for the agent ``name`` (administrators)."""
        body = {"name": name, "ttl_s": ttl_s}
        return self.parse_invitation(
            await self._send(Request("POST", "/api/v1/agents/invite", json=body))
        )

    async def agent_stats(self, agent_id: str) -> AgentStatsPublic:
        return self.parse_agent_stats(
            await self._send(Request("GET", f"/api/v1/agents/{agent_id}/stats"))
        )

    async def channels(self) -> builtins.list[ChannelPublic]:
        return self.parse_channels(await self._send(Request("GET", "/api/v1/channels")))

    async def set_channel(
        self,
        source_site: str,
        destination_site: str,
        *,
        max_active: int | None = None,
        bandwidth: int | None = None,
        state: str = "active",
        bandwidth_timetable: str | None = None,
        timezone: str = "UTC",
        optimize: bool = False,
        min_active: int | None = None,
    ) -> ChannelPublic:
        """``optimize``: the link optimizer moves the limit from ``min_active`` up to
        ``max_active``."""
        request = self.channel_request(
            source_site,
            destination_site,
            max_active=max_active,
            bandwidth=bandwidth,
            state=state,
            bandwidth_timetable=bandwidth_timetable,
            timezone=timezone,
            optimize=optimize,
            min_active=min_active,
        )
        return self.parse_channel(await self._send(request))

    async def remove_channel(self, source_site: str, destination_site: str) -> None:
        request = self.channel_request(source_site, destination_site)
        await self._send(Request("DELETE", request.path))

    async def scopes(self) -> builtins.list[ScopePublic]:
        return self.parse_scopes(await self._send(Request("GET", "/api/v1/scopes")))

    async def set_scope(self, name: str, *, weight: int) -> ScopePublic:
        return self.parse_scope(
            await self._send(Request("PUT", f"/api/v1/scopes/{name}", json={"weight": weight}))
        )

    async def events(
        self,
        transfer_id: str | None = None,
        kinds: Sequence[str] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> AsyncGenerator[dict[str, Any]]:
        """Server-sent events as they come (``transfer_id``: that transfer's only; ``kinds``:
        those kinds only, e.g. ``["transfer"]`` for its status alone; ``read_timeout``:
        ``httpx.ReadTimeout`` after that long without a byte)."""
        params = self.event_filter(transfer_id, kinds)
        timeout = httpx.Timeout(None, read=read_timeout)
        async with self._http.stream(
            "GET", "/api/v1/events", params=params, headers=self._headers(), timeout=timeout
        ) as response:
            if response.is_error:
                await response.aread()
                self.parse(response)
            lines: builtins.list[str] = []
            async for line in response.aiter_lines():
                if line:
                    lines.append(line)
                    continue
                event = self.parse_event(lines)
                lines = []
                if event is not None:
                    yield event

    async def cancel(self, transfer_id: str) -> CancelResult:
        return self.parse_cancel(
            await self._send(Request("POST", f"/api/v1/transfers/{transfer_id}/cancel"))
        )

    async def pause(self, transfer_id: str, *, now: bool = False) -> PauseResult:
        """No new copies of its objects, no new runs; ``now``: its active copies stop too."""
        return self.parse_pause(await self._send(pause_request(transfer_id, now=now)))

    async def resume(self, transfer_id: str) -> PauseResult:
        return self.parse_pause(
            await self._send(Request("POST", f"/api/v1/transfers/{transfer_id}/resume"))
        )

    async def pause_agent(self, agent: str) -> AgentPublic:
        """Drain an agent (by name or id): no new leases; it finishes what it holds."""
        return self.parse_agent(await self._send(Request("POST", f"/api/v1/agents/{agent}/pause")))

    async def resume_agent(self, agent: str) -> AgentPublic:
        return self.parse_agent(await self._send(Request("POST", f"/api/v1/agents/{agent}/resume")))

    async def rerun(self, transfer_id: str) -> TransferPublic:
        """A new transfer with this one's spec, scope and labels, to run now."""
        return self.parse_transfer(
            await self._send(Request("POST", f"/api/v1/transfers/{transfer_id}/rerun"))
        )

    async def outcomes(
        self, transfer_id: str, *, run: int | None = None, status: str | None = None
    ) -> Outcomes:
        pages, cursor = [], 0
        while True:
            params: dict[str, Any] = {"cursor": cursor, "run": run, "status": status}
            params = {name: value for name, value in params.items() if value is not None}
            request = Request("GET", f"/api/v1/transfers/{transfer_id}/outcomes", params=params)
            page = self.parse_outcomes(await self._send(request))
            pages.append(page)
            if page.next_cursor is None:
                return merge_outcome_pages(pages)
            cursor = int(page.next_cursor)

    async def wait(
        self,
        transfer_id: str,
        *,
        timeout: float | None = None,
        poll_s: float = 0.2,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        kinds: Sequence[str] | None = WAIT_KINDS,
    ) -> TransferPublic:
        """Until the transfer reaches a final status: following its events, so that it returns
        as that status is published; polling (backing off to one poll a second) when the
        stream cannot be had or ends early. ``on_event``: called with each event of
        ``kinds`` (None: all), by default its status and progress (every second while it
        runs)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with contextlib.suppress(httpx.TransportError, ApiError):  # ReadTimeout: the deadline
            wanted = kinds if on_event else ("transfer",)
            stream = self.events(transfer_id, wanted, read_timeout=left(deadline))
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if on_event:
                        on_event(event)
                    if ends_wait(event, deadline):
                        break
        while True:
            transfer = await self.get(transfer_id)
            if transfer.status in FINAL_STATUSES:
                return transfer
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"transfer {transfer_id} still {transfer.status} after {timeout} s"
                )
            await asyncio.sleep(poll_s)
            poll_s = min(poll_s * 1.5, 1.0)

    # --- passive transfers: this machine is one end ----------------------------------------
    async def push(
        self,
        paths: builtins.list[Path],
        destination: str,
        *,
        tree: bool = False,
        options: dict[str, Any] | None = None,
        scope: str | None = None,
        progress: Callable[[int], None] = lambda _n: None,
        started: Callable[[PassiveCreated], None] = lambda _c: None,
        ended: Callable[[str], None] = lambda _name: None,
    ) -> TransferPublic:
        """``Client.push``'s twin."""
        objects = await asyncio.to_thread(objects_to_push, paths, tree=tree)
        request = self.push_request(objects, destination, options=options, scope=scope)
        created = self.parse_passive(await self._send(request))
        started(created)
        algorithm = Checksum(created.transfer.options["checksum"])
        transfer_id, capability = created.transfer.id, created.capability
        async with self._closing(transfer_id, capability):
            for obj in objects:
                await self._push_one(transfer_id, capability, obj, algorithm, progress)
                ended(obj.name)
        return await self.wait(transfer_id)

    async def _push_one(
        self,
        transfer_id: str,
        capability: str,
        obj: LocalObject,
        algorithm: Checksum,
        progress: Callable[[int], None],
    ) -> ObjectResult:
        headers = {
            "X-Ferry-Capability": capability,
            "X-Ferry-Checksum": await asyncio.to_thread(checksum_of, obj.path, algorithm),
            "X-Ferry-Size": str(obj.size),
            "X-Ferry-Mtime": str(obj.mtime),
        }
        for _attempt in range(PASSIVE_ATTEMPTS):
            response = await self._http.put(
                self.data_path(transfer_id, obj.name),
                content=_blocks(obj.path, progress),
                headers=headers,
                timeout=None,
            )
            result = self.parse_object_result(self.parse(response))
            if result.state != "FAILED" or not result.retryable:
                return result
        return result

    async def pull(
        self,
        sources: builtins.list[str],
        folder: Path,
        *,
        options: dict[str, Any] | None = None,
        scope: str | None = None,
        progress: Callable[[int], None] = lambda _n: None,
        started: Callable[[PassiveCreated], None] = lambda _c: None,
        ended: Callable[[str], None] = lambda _name: None,
    ) -> TransferPublic:
        """``Client.pull``'s twin."""
        request = self.pull_request(sources, options=options, scope=scope)
        created = self.parse_passive(await self._send(request))
        started(created)
        algorithm = Checksum(created.transfer.options["checksum"])
        keep_existing = created.transfer.options.get("overwrite", "never") == "never"
        transfer_id, capability = created.transfer.id, created.capability
        async with self._closing(transfer_id, capability):
            present = [
                o.name for o in created.objects if keep_existing and (folder / o.name).exists()
            ]
            for body in self.skipped_bodies(present):
                await self._skipped(transfer_id, capability, body)
            skipped = set(present)
            for name in present:
                ended(name)
            for obj in created.objects:
                if obj.name in skipped:
                    continue
                try:
                    await self._pull_one(
                        transfer_id, capability, obj.name, folder, algorithm, progress
                    )
                except ApiError as exc:
                    if exc.status >= 500 or exc.status in (401, 403):
                        raise
                    # The server could not read it: recorded FAILED there; go on with the rest.
                ended(obj.name)
        return await self.wait(transfer_id)

    async def _pull_one(
        self,
        transfer_id: str,
        capability: str,
        name: str,
        folder: Path,
        algorithm: Checksum,
        progress: Callable[[int], None],
    ) -> None:
        headers = {"X-Ferry-Capability": capability}
        target = await asyncio.to_thread(PulledFile, folder, name, algorithm)
        try:
            async with self._http.stream(
                "GET", self.data_path(transfer_id, name), headers=headers, timeout=None
            ) as response:
                if response.is_error:
                    await response.aread()
                    self.parse(response)
                async for block in response.aiter_bytes(BLOCK):
                    await asyncio.to_thread(target.write, block)
                    progress(len(block))
                expected = response.headers.get("X-Ferry-Checksum")
                kept = await asyncio.to_thread(target.keep, expected)
        except ChecksumMismatch as exc:
            failed = {"state": "FAILED", "error": str(exc)}
            await self._pulled(transfer_id, capability, name, failed)
            return
        except BaseException:
            target.discard()
            raise
        result = {"state": "DONE", "bytes": target.size, "checksum": kept}
        await self._pulled(transfer_id, capability, name, result)

    async def _skipped(self, transfer_id: str, capability: str, body: dict[str, Any]) -> None:
        response = await self._http.post(
            self.skipped_path(transfer_id), json=body, headers={"X-Ferry-Capability": capability}
        )
        self.parse(response)

    async def _pulled(
        self, transfer_id: str, capability: str, name: str, body: dict[str, Any]
    ) -> None:
        response = await self._http.post(
            self.data_path(transfer_id, name, "received"),
            json=body,
            headers={"X-Ferry-Capability": capability},
        )
        self.parse(response)

    @contextlib.asynccontextmanager
    async def _closing(self, transfer_id: str, capability: str) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                await self._close_passive(transfer_id, capability)
            raise
        await self._close_passive(transfer_id, capability)

    async def _close_passive(self, transfer_id: str, capability: str) -> None:
        response = await self._http.post(
            f"/api/v1/transfers/{transfer_id}/close", headers={"X-Ferry-Capability": capability}
        )
        self.parse(response)

    async def storages(self) -> builtins.list[StoragePublic]:
        data = await self._send(Request("GET", "/api/v1/storages"))
        return [StoragePublic.model_validate(item) for item in data]

    async def add_storage(
        self,
        name: str,
        url: str,
        *,
        site: str = "default",
        options: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> StoragePublic:
        """Add a storage; ``replace``: replace the one of that name (refused while a waiting
        or running transfer names it)."""
        request = self.add_storage_request(
            name, url, site=site, options=options, credentials=credentials, replace=replace
        )
        return StoragePublic.model_validate(await self._send(request))

    async def remove_storage(self, name: str) -> None:
        await self._send(Request("DELETE", f"/api/v1/storages/{name}"))

    async def grant_storage(
        self, name: str, scope: str, *, read: bool = False, write: bool = False
    ) -> GrantPublic:
        """Let ``scope``'s transfers read from and/or write to the storage (replacing what the
        scope had)."""
        body = {"read": read, "write": write}
        path = f"/api/v1/storages/{name}/grants/{scope}"
        return GrantPublic.model_validate(await self._send(Request("PUT", path, json=body)))

    async def ungrant_storage(self, name: str, scope: str) -> None:
        await self._send(Request("DELETE", f"/api/v1/storages/{name}/grants/{scope}"))


async def _blocks(path: Path, progress: Callable[[int], None]) -> AsyncIterator[bytes]:
    blocks = read_blocks(path, progress)
    while (block := await asyncio.to_thread(next, blocks, None)) is not None:
        yield block
