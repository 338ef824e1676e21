"""The Python AsyncClient against the real app in-process: the same answers as the CLI gets."""

from __future__ import annotations

import pytest

from ferry.client import AsyncClient
from ferry.errors import ApiError


async def test_the_async_client_submits_waits_and_manages_storages(api, tmp_path) -> None:
    token = (api.state.settings.data_dir / "admin.token").read_text().strip()
    (api.root / "a.txt").write_text("a")
    (tmp_path / "box").mkdir()
    async with AsyncClient("http://ferry", token, transport=api.transport) as client:
        added = await client.add_storage(
            "box", (tmp_path / "box").as_uri(), credentials={"password": "pw"}
        )
        assert added.credentials == ["password"]
        assert [s.name for s in await client.storages()] == ["box", "local"]
        schedule = {"kind": "at", "at": "2099-01-01T00:00:00Z"}
        later = await client.submit(["local:a.txt"], "box:in", schedule=schedule)
        assert later.status == "STANDBY"
        assert (await client.outcomes(later.id)).started is False
        assert (await client.cancel(later.id)).status == "CANCELED"
        await client.remove_storage("box")
        assert [s.name for s in await client.storages()] == ["local"]
        with pytest.raises(ApiError) as refused:
            await client.remove_storage("box")
        assert refused.value.status == 404
        assert await client.runs(later.id) == []
