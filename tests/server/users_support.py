"""Users, their tokens and their scopes' grants, made through the API for the tests."""

from __future__ import annotations

from typing import Any

import httpx


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def add_user(api, name: str, role: str = "WRITE", **extra: Any) -> dict[str, Any]:
    body = {"name": name, "role": role, "scopes": ["default"], **extra}
    response = await api.client.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def grant(api, storage: str, scope: str, read: bool = True, write: bool = True) -> None:
    body = {"read": read, "write": write}
    given = await api.client.put(f"/api/v1/storages/{storage}/grants/{scope}", json=body)
    assert given.status_code == 200, given.text


async def as_user(api, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return await api.anonymous.request(method, path, headers=bearer(token), **kwargs)
