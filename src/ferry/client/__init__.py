"""The Python client: ``Client`` (sync) and ``AsyncClient`` mirror each other method for method.

Each is imported when first named (``from ferry.client import Client``), with httpx and the API's
schemas behind it: the CLI's plain client (``ferry.client.plain``) lives in this package too and
must not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferry.client.asyncio import AsyncClient
    from ferry.client.sync import Client

__all__ = ["AsyncClient", "Client"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from ferry.client.sync import Client

        return Client
    if name == "AsyncClient":
        from ferry.client.asyncio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
