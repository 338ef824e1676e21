"""The Python client: ``Client`` (sync) and ``AsyncClient`` mirror each other method for method."""

from ferry.client.asyncio import AsyncClient
from ferry.client.sync import Client

__all__ = ["AsyncClient", "Client"]
