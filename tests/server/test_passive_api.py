"""Passive transfers (push, pull) through the API in-process: the capability, checksums, the
overwrite rule, names that try to escape, the body cap, closing, and agents never leasing them."""

from __future__ import annotations

import asyncio
import os
import secrets
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from ferry.client import AsyncClient

PROBLEM = "application/problem+json"
FINAL = {"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"}
MIB = 1024 * 1024


def adler(data: bytes) -> str:
    return f"adler32:{zlib.adler32(data):08x}"


async def create_push(api, objects: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"destination": "local:dst", "objects": objects, **extra}
    response = await api.client.post("/api/v1/transfers/push", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_pull(api, *sources: str, **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/transfers/pull", json={"sources": list(sources), **extra}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def data_path(created: dict[str, Any], name: str, kind: str = "data") -> str:
    return f"/api/v1/transfers/{created['transfer']['id']}/{kind}/{quote(name)}"


async def put(api, created: dict[str, Any], name: str, data: bytes, **headers: str):
    sent = {
        "X-Ferry-Capability": created["capability"],
        "X-Ferry-Checksum": adler(data),
        "X-Ferry-Size": str(len(data)),
        **headers,
    }
    return await api.anonymous.put(data_path(created, name), content=data, headers=sent)


async def close(api, created: dict[str, Any], capability: str | None = None):
    return await api.anonymous.post(
        f"/api/v1/transfers/{created['transfer']['id']}/close",
        headers={"X-Ferry-Capability": capability or created["capability"]},
    )


async def verdict(api, eventually, created: dict[str, Any]) -> dict[str, Any]:
    return await verdict_within(api, eventually, created, timeout=20)


async def verdict_within(
    api, eventually, created: dict[str, Any], timeout: float
) -> dict[str, Any]:
    path = f"/api/v1/transfers/{created['transfer']['id']}"

    async def final():
        transfer = (await api.client.get(path)).json()
        return transfer if transfer["status"] in FINAL else None

    return dict(await eventually(final, timeout=timeout))


async def outcomes(api, created: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = await api.client.get(f"/api/v1/transfers/{created['transfer']['id']}/outcomes")
    assert response.status_code == 200, response.text
    return {o["destination"]: o for o in response.json()["objects"]}


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def refused(response, reason: str, status: int = 403) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert reason in response.json()["detail"]


# --- creating ----------------------------------------------------------------------------------
async def test_a_push_returns_a_capability_and_its_objects(api) -> None:
    created = await create_push(
        api, [{"name": "a.txt", "size": 3}, {"name": "sub/b.txt", "size": 0}], ttl_s=60
    )

    assert len(created["capability"]) == 64
    assert created["transfer"]["status"] == "ONGOING"
    assert created["objects"] == [{"name": "a.txt", "size": 3}, {"name": "sub/b.txt", "size": 0}]
    assert created["capability"] not in (await api.client.get("/api/v1/transfers")).text


async def test_a_new_passive_transfer_counts_its_objects(api) -> None:
    created = await create_push(api, [{"name": "a.txt"}, {"name": "b.txt"}])
    shown = (await api.client.get(f"/api/v1/transfers/{created['transfer']['id']}")).json()

    assert shown["objects"]["total"] == 2
    assert created["transfer"]["objects"] == shown["objects"]


async def test_creating_needs_a_token(api) -> None:
    body = {"destination": "local:dst", "objects": [{"name": "a"}]}
    response = await api.anonymous.post("/api/v1/transfers/push", json=body)
    assert response.status_code == 401
    response = await api.anonymous.post("/api/v1/transfers/pull", json={"sources": ["local:a"]})
    assert response.status_code == 401


# --- the capability ----------------------------------------------------------------------------
async def test_a_wrong_capability_is_refused(api) -> None:
    created = await create_push(api, [{"name": "a.txt"}])
    forged = {**created, "capability": secrets.token_urlsafe(48)}

    refused(await put(api, forged, "a.txt", b"abc"), "capability refused: unknown")
    refused(await close(api, forged), "capability refused: unknown")
    # The admin token is no capability either.
    response = await api.client.put(
        data_path(created, "a.txt"), content=b"abc", headers={"X-Ferry-Capability": "x" * 20}
    )
    refused(response, "capability refused: unknown")
    response = await api.anonymous.put(data_path(created, "a.txt"), content=b"abc")
    assert response.status_code == 422  # no capability header at all
    assert not (api.root / "dst").exists()


async def test_a_capability_opens_only_its_own_transfer(api) -> None:
    mine = await create_push(api, [{"name": "a.txt"}])
    other = await create_push(api, [{"name": "a.txt"}])

    stolen = {**other, "capability": mine["capability"]}
    refused(await put(api, stolen, "a.txt", b"abc"), "for another transfer")
    refused(await close(api, stolen), "for another transfer")
    assert not (api.root / "dst").exists()
    assert (await put(api, other, "a.txt", b"abc")).json()["state"] == "DONE"


async def test_a_capability_ends_with_close(api) -> None:
    created = await create_push(api, [{"name": "a.txt"}, {"name": "b.txt"}])
    assert (await put(api, created, "a.txt", b"abc")).json()["state"] == "DONE"
    assert (await close(api, created)).status_code == 200

    refused(await put(api, created, "b.txt", b"late"), "capability refused: the transfer is closed")
    refused(await close(api, created), "the transfer is closed")
    assert leftovers(api.root / "dst") == ["a.txt"]


async def test_a_pull_capability_does_not_push(api) -> None:
    (api.root / "a.txt").write_bytes(b"abc")
    created = await create_pull(api, "local:a.txt")

    response = await put(api, created, "a.txt", b"xyz")

    refused(response, "this transfer is a pull, not a push", status=422)
    assert (api.root / "a.txt").read_bytes() == b"abc"


# --- pushed data -------------------------------------------------------------------------------
async def test_a_pushed_object_arrives_with_its_checksum(api, eventually) -> None:
    data = os.urandom(100_000)
    created = await create_push(api, [{"name": "deep/er/é x.bin", "size": len(data)}])

    result = (await put(api, created, "deep/er/é x.bin", data)).json()
    await close(api, created)

    assert result == {
        "name": "deep/er/é x.bin",
        "state": "DONE",
        "bytes": len(data),
        "checksum": adler(data),
        "error_class": None,
        "error": None,
        "retryable": False,
    }
    assert (api.root / "dst" / "deep" / "er" / "é x.bin").read_bytes() == data
    assert leftovers(api.root / "dst" / "deep" / "er") == ["é x.bin"]
    transfer = await verdict(api, eventually, created)
    assert transfer["status"] == "COMPLETED"
    assert transfer["bytes"] == len(data)
    (obj,) = (await outcomes(api, created)).values()
    assert obj["status"] == "DONE"
    assert obj["checksum"] == adler(data)
    assert obj["history"][0]["agent"] == "client"


async def test_a_wrong_checksum_fails_and_leaves_nothing(api) -> None:
    data = b"the real bytes"
    created = await create_push(api, [{"name": "a.txt", "size": len(data)}])

    response = await put(api, created, "a.txt", data, **{"X-Ferry-Checksum": "adler32:00000bad"})

    assert response.status_code == 200
    result = response.json()
    assert result["state"] == "FAILED"
    assert result["error_class"] == "checksum"
    assert "adler32:00000bad" in result["error"]
    assert adler(data) in result["error"]
    assert leftovers(api.root / "dst") == []
    (obj,) = (await outcomes(api, created)).values()
    assert obj["history"][-1]["state"] == "FAILED"
    assert obj["history"][-1]["error_class"] == "checksum"


async def test_a_short_body_fails_and_leaves_nothing(api) -> None:
    created = await create_push(api, [{"name": "a.txt", "size": 10}])

    response = await put(api, created, "a.txt", b"12345", **{"X-Ferry-Size": "10"})

    assert response.json()["state"] == "FAILED"
    assert response.json()["error_class"] == "transient"
    assert "5 of 10 bytes arrived" in response.json()["error"]
    assert leftovers(api.root / "dst") == []


async def test_overwrite_never_skips_a_second_push(api, eventually) -> None:
    first = await create_push(api, [{"name": "a.txt"}])
    assert (await put(api, first, "a.txt", b"first")).json()["state"] == "DONE"
    await close(api, first)

    second = await create_push(api, [{"name": "a.txt"}], options={"overwrite": "never"})
    result = (await put(api, second, "a.txt", b"second")).json()
    await close(api, second)

    assert result["state"] == "SKIPPED"
    assert (api.root / "dst" / "a.txt").read_bytes() == b"first"
    assert leftovers(api.root / "dst") == ["a.txt"]
    transfer = await verdict(api, eventually, second)
    assert transfer["status"] == "COMPLETED"
    assert transfer["objects"]["skipped"] == 1

    third = await create_push(api, [{"name": "a.txt"}], options={"overwrite": "always"})
    assert (await put(api, third, "a.txt", b"third")).json()["state"] == "DONE"
    assert (api.root / "dst" / "a.txt").read_bytes() == b"third"


async def test_an_object_is_sent_once(api) -> None:
    created = await create_push(api, [{"name": "a.txt"}])
    assert (await put(api, created, "a.txt", b"abc")).json()["state"] == "DONE"

    refused(await put(api, created, "a.txt", b"abc"), "not an object waiting", status=404)
    refused(await put(api, created, "other.txt", b"abc"), "not an object waiting", status=404)
    assert leftovers(api.root / "dst") == ["a.txt"]


# --- names that try to escape ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/x", "..", "a/.."])
async def test_object_names_stay_below_the_destination(api, name) -> None:
    body = {"destination": "local:dst", "objects": [{"name": name}]}
    response = await api.client.post("/api/v1/transfers/push", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert leftovers(api.root) == []


async def test_a_data_name_that_escapes_is_refused(api) -> None:
    created = await create_push(api, [{"name": "x"}])

    for name in ("../x", "../../x", "a/../../x"):
        path = f"/api/v1/transfers/{created['transfer']['id']}/data/{quote(name, safe='')}"
        response = await api.anonymous.put(
            path, content=b"evil", headers={"X-Ferry-Capability": created["capability"]}
        )
        refused(response, f"path {name!r} is outside storage 'client'", status=422)
    assert leftovers(api.root) == []
    assert not (api.root.parent / "x").exists()


async def test_a_destination_outside_the_storage_is_refused(api) -> None:
    body = {"destination": "local:../outside", "objects": [{"name": "x"}]}
    response = await api.client.post("/api/v1/transfers/push", json=body)

    assert response.status_code == 422, response.text
    assert not (api.root.parent / "outside").exists()


async def test_pulled_names_stay_below_the_local_folder(api) -> None:
    for name in ("../x", "a/../../x"):
        response = await api.client.post(
            "/api/v1/transfers/pull", json={"sources": [f"local:{name}"]}
        )
        assert response.status_code == 422, response.text


async def test_the_data_directory_cannot_be_pulled_or_pushed_into(api, tmp_path) -> None:
    added = await api.client.post(
        "/api/v1/storages", json={"name": "parent", "url": tmp_path.as_uri()}
    )
    assert added.status_code == 201, added.text

    for sources in (
        ["parent:.ferry"],
        ["parent:.ferry/admin.token"],
        ["parent:root", "parent:.ferry"],
    ):
        response = await api.client.post("/api/v1/transfers/pull", json={"sources": sources})
        refused(response, "inside the server's data directory", status=422)
    body = {"destination": "parent:.ferry", "objects": [{"name": "admin.token"}]}
    response = await api.client.post("/api/v1/transfers/push", json=body)
    refused(response, "inside the server's data directory", status=422)
    # An allowed folder, and an object whose name leads into the data directory.
    for name in (".ferry/admin.token", "x/../.ferry/ferry.db", ".ferry"):
        body = {"destination": "parent:", "objects": [{"name": "fine.txt"}, {"name": name}]}
        response = await api.client.post("/api/v1/transfers/push", json=body)
        refused(response, "inside the server's data directory", status=422)
    transfers = (await api.client.get("/api/v1/transfers")).json()["items"]
    assert transfers == []


# --- the body cap ------------------------------------------------------------------------------
async def test_the_body_cap_spares_pushed_data(api) -> None:
    data = os.urandom(17 * MIB)
    created = await create_push(api, [{"name": "big.bin", "size": len(data)}, {"name": "s.bin"}])

    declared = await put(api, created, "big.bin", data)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), MIB):
            yield data[start : start + MIB]

    streamed = await api.anonymous.put(
        data_path(created, "s.bin"),
        content=chunks(),
        headers={"X-Ferry-Capability": created["capability"], "X-Ferry-Checksum": adler(data)},
    )

    for response in (declared, streamed):
        assert response.status_code == 200, response.text[:300]
        assert response.json()["state"] == "DONE"
        assert response.json()["bytes"] == len(data)
    assert (api.root / "dst" / "big.bin").read_bytes() == data
    assert (api.root / "dst" / "s.bin").read_bytes() == data


async def test_the_body_cap_still_holds_elsewhere(api) -> None:
    names = [{"name": f"{'n' * 200}-{i}"} for i in range(90_000)]  # about 17 MiB of JSON
    response = await api.client.post(
        "/api/v1/transfers/push", json={"destination": "local:dst", "objects": names}
    )
    refused(response, "request body larger than", status=413)

    (api.root / "a.txt").write_bytes(b"abc")
    pull = await create_pull(api, "local:a.txt")
    padding = b" " * (17 * MIB)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"state": "DONE"'
        for start in range(0, len(padding), MIB):
            yield padding[start : start + MIB]
        yield b"}"

    headers = {"X-Ferry-Capability": pull["capability"], "Content-Type": "application/json"}
    for content in (b'{"state": "DONE"' + padding + b"}", chunks()):
        response = await api.anonymous.post(
            data_path(pull, "a.txt", "received"), content=content, headers=headers
        )
        refused(response, "request body larger than", status=413)
    # A PUT elsewhere than the data path is capped too.
    response = await api.client.put("/api/v1/transfers/x/other", content=padding)
    assert response.status_code == 413


# --- closing -----------------------------------------------------------------------------------
async def test_objects_not_sent_before_close_fail(api, eventually) -> None:
    created = await create_push(api, [{"name": "a.txt"}, {"name": "b.txt"}, {"name": "c/d.txt"}])
    assert (await put(api, created, "a.txt", b"abc")).json()["state"] == "DONE"

    response = await close(api, created)

    assert response.status_code == 200
    assert response.json() == {"transfer": created["transfer"]["id"], "not_transferred": 2}
    transfer = await verdict(api, eventually, created)
    assert transfer["status"] == "COMPLETED_WITH_ERRORS"
    assert transfer["objects"] | {} == {
        "total": 3,
        "done": 1,
        "failed": 2,
        "skipped": 0,
        "canceled": 0,
        "filtered": 0,
    }
    found = await outcomes(api, created)
    assert found["local:dst/a.txt"]["status"] == "DONE"
    for name in ("local:dst/b.txt", "local:dst/c/d.txt"):
        assert found[name]["status"] == "FAILED"
        assert found[name]["error"] == "not sent by the client"
    assert leftovers(api.root / "dst") == ["a.txt"]


async def test_a_pull_with_nothing_fetched_fails(api, eventually) -> None:
    (api.root / "src").mkdir()
    (api.root / "src" / "a.txt").write_bytes(b"abc")
    created = await create_pull(api, "local:src")

    assert (await close(api, created)).json()["not_transferred"] == 1

    transfer = await verdict(api, eventually, created)
    assert transfer["status"] == "FAILED"
    (obj,) = (await outcomes(api, created)).values()
    assert obj["error"] == "not fetched by the client"


# --- pulled data -------------------------------------------------------------------------------
async def test_a_pulled_object_is_done_only_with_the_servers_checksum(api, eventually) -> None:
    (api.root / "src" / "sub").mkdir(parents=True)
    (api.root / "src" / "a.txt").write_bytes(b"abc")
    (api.root / "src" / "sub" / "b.txt").write_bytes(b"hello")
    created = await create_pull(api, "local:src")
    assert sorted(o["name"] for o in created["objects"]) == ["a.txt", "sub/b.txt"]
    headers = {"X-Ferry-Capability": created["capability"]}

    got = {}
    for name in ("a.txt", "sub/b.txt"):
        response = await api.anonymous.get(data_path(created, name), headers=headers)
        assert response.status_code == 200
        got[name] = response.content
        assert response.headers["X-Ferry-Checksum"] == adler(response.content)
    good = {"state": "DONE", "bytes": 3, "checksum": adler(b"abc")}
    bad = {"state": "DONE", "bytes": 5, "checksum": "adler32:00000bad"}
    first = await api.anonymous.post(
        data_path(created, "a.txt", "received"), json=good, headers=headers
    )
    second = await api.anonymous.post(
        data_path(created, "sub/b.txt", "received"), json=bad, headers=headers
    )
    await close(api, created)

    assert got == {"a.txt": b"abc", "sub/b.txt": b"hello"}
    assert first.json()["state"] == "DONE"
    assert second.json()["state"] == "FAILED"
    assert second.json()["error_class"] == "checksum"
    transfer = await verdict(api, eventually, created)
    assert transfer["status"] == "COMPLETED_WITH_ERRORS"
    found = await outcomes(api, created)
    assert found["client:a.txt"]["status"] == "DONE"
    assert found["client:a.txt"]["checksum"] == adler(b"abc")
    assert found["client:sub/b.txt"]["status"] == "FAILED"


async def skip(api, created: dict[str, Any], names: list[str], capability: str | None = None):
    return await api.anonymous.post(
        f"/api/v1/transfers/{created['transfer']['id']}/skipped",
        json={"names": names},
        headers={"X-Ferry-Capability": capability or created["capability"]},
    )


async def test_objects_the_client_already_has_are_skipped_in_one_call(api, eventually) -> None:
    (api.root / "src" / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (api.root / "src" / name).write_bytes(name.encode())
    created = await create_pull(api, "local:src")
    headers = {"X-Ferry-Capability": created["capability"]}

    response = await skip(api, created, ["a.txt", "sub/c.txt", "not-in-the-pull.txt"])
    again = await skip(api, created, ["a.txt"])
    fetched = await api.anonymous.get(data_path(created, "b.txt"), headers=headers)
    done = {"state": "DONE", "bytes": 5, "checksum": adler(fetched.content)}
    await api.anonymous.post(data_path(created, "b.txt", "received"), json=done, headers=headers)
    await close(api, created)

    assert response.status_code == 200, response.text
    assert response.json() == {"skipped": 2}
    assert again.json() == {"skipped": 0}  # ended already: left alone
    transfer = await verdict(api, eventually, created)
    assert transfer["status"] == "COMPLETED"
    assert transfer["objects"] == {
        "total": 3,
        "done": 1,
        "skipped": 2,
        "failed": 0,
        "canceled": 0,
        "filtered": 0,
    }
    found = await outcomes(api, created)
    assert {name: o["status"] for name, o in found.items()} == {
        "client:a.txt": "SKIPPED",
        "client:b.txt": "DONE",
        "client:sub/c.txt": "SKIPPED",
    }
    assert found["client:a.txt"]["attempts"] == 1


async def test_only_a_pull_skips_and_only_names_below_its_folder(api) -> None:
    (api.root / "a.txt").write_bytes(b"abc")
    pull = await create_pull(api, "local:a.txt")
    push = await create_push(api, [{"name": "a.txt"}])

    refused(await skip(api, push, ["a.txt"]), "this transfer is a push, not a pull", status=422)
    refused(await skip(api, pull, ["../a.txt"]), "outside", status=422)
    refused(await skip(api, pull, ["a.txt"], capability=push["capability"]), "another transfer")
    too_many = await skip(api, pull, [f"f{n}" for n in range(1001)])
    assert too_many.status_code == 422
    for name in ("", "x" * 4097):  # a name as long as a pushed object's may be, no longer
        assert (await skip(api, pull, [name])).status_code == 422
    assert (await skip(api, pull, ["a.txt"])).json() == {"skipped": 1}


# --- agents ------------------------------------------------------------------------------------
async def test_agents_never_lease_passive_tasks(api, eventually) -> None:
    (api.root / "a.txt").write_bytes(b"abc")
    push = await create_push(api, [{"name": f"p{i}.txt"} for i in range(5)])
    pull = await create_pull(api, "local:a.txt")
    # An object that failed retryably waits, then is queued again: still the client's.
    bad = await put(api, push, "p0.txt", b"x", **{"X-Ferry-Checksum": "adler32:00000bad"})
    assert bad.json()["retryable"] is True
    assert await api.state.store.requeue_waiting(datetime.now(UTC) + timedelta(hours=1)) == 1
    normal = await api.client.post(
        "/api/v1/transfers", json={"sources": ["local:a.txt"], "destination": "local:out"}
    )
    assert normal.status_code == 201, normal.text
    ttl = timedelta(minutes=1)

    leased = await eventually(lambda: api.state.store.lease_tasks("a1", limit=100, ttl=ttl))
    again = await api.state.store.lease_tasks("a1", limit=100, ttl=ttl)

    assert {task.transfer_id for task in leased} == {normal.json()["id"]}
    assert again == []
    passive = {push["transfer"]["id"], pull["transfer"]["id"]}
    assert all(task.transfer_id not in passive for task in leased)
    assert (await put(api, push, "p0.txt", b"x")).json()["state"] == "DONE"
    assert (api.root / "dst" / "p0.txt").read_bytes() == b"x"


# --- the Python AsyncClient ---------------------------------------------------------------------
async def test_the_async_client_pushes_and_pulls_a_tree(api, tmp_path) -> None:
    files = {"a.txt": b"a", "sub/é x.bin": os.urandom(5 * MIB + 3), "sub/deeper/empty": b""}
    for name, data in files.items():
        (tmp_path / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / name).write_bytes(data)
    token = (api.state.settings.data_dir / "admin.token").read_text().strip()
    async with AsyncClient("http://ferry", token, transport=api.transport) as client:
        pushed = await client.push([tmp_path / "tree"], "local:in", tree=True)
        pulled = await client.pull(["local:in"], tmp_path / "back")
        again = await client.pull(["local:in"], tmp_path / "back")

    assert (pushed.status, pushed.objects.done) == ("COMPLETED", 3)
    assert (pulled.status, pulled.objects.done) == ("COMPLETED", 3)
    assert (again.status, again.objects.skipped) == ("COMPLETED", 3)
    for name, data in files.items():
        assert (api.root / "in" / name).read_bytes() == data
        assert (tmp_path / "back" / name).read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "back").rglob("*.part")) == []


# --- interruptions and partial failures --------------------------------------------------------
async def test_a_pull_interrupted_mid_object_ends_when_closed(api, eventually) -> None:
    (api.root / "a.txt").write_bytes(b"abc")
    created = await create_pull(api, "local:a.txt")
    headers = {"X-Ferry-Capability": created["capability"]}
    assert (await api.anonymous.get(data_path(created, "a.txt"), headers=headers)).content == b"abc"

    # The client never says what it kept (Ctrl-C), then closes on its way out.
    assert (await close(api, created)).json()["not_transferred"] == 1
    api.state.wakeups.finalize.set()
    transfer = await verdict_within(api, eventually, created, timeout=3)

    assert transfer["status"] == "FAILED"
    assert "not fetched by the client" in transfer["error"]


async def test_a_pull_goes_on_after_an_object_fails(api, tmp_path) -> None:
    (api.root / "src").mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (api.root / "src" / name).write_text(name)
    token = (api.state.settings.data_dir / "admin.token").read_text().strip()

    def vanish(_created: object) -> None:
        (api.root / "src" / "b.txt").unlink()  # listed, then gone before it is fetched

    async with AsyncClient("http://ferry", token, transport=api.transport) as client:
        transfer = await client.pull(["local:src"], tmp_path / "back", started=vanish)

    assert transfer.status == "COMPLETED_WITH_ERRORS"
    assert (transfer.objects.done, transfer.objects.failed) == (2, 1)
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["a.txt", "c.txt"]


async def test_an_object_still_arriving_when_the_push_closes_ends_as_it_lands(
    api, eventually
) -> None:
    """Defect 18.16: a push closed while an object was still arriving (a client interrupted
    after sending it) recorded that object FAILED "not sent by the client", though it landed
    whole. Its own request ends it."""
    data = os.urandom(2 * MIB)
    created = await create_push(api, [{"name": "a.bin"}])
    halfway, resume = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield data[:MIB]
        halfway.set()
        await resume.wait()
        yield data[MIB:]

    headers = {"X-Ferry-Capability": created["capability"], "X-Ferry-Checksum": adler(data)}
    sending = asyncio.create_task(
        api.anonymous.put(data_path(created, "a.bin"), content=chunks(), headers=headers)
    )
    await halfway.wait()
    closed = await close(api, created)
    resume.set()
    response = await sending

    assert closed.json()["not_transferred"] == 0
    assert response.json()["state"] == "DONE"
    assert (api.root / "dst" / "a.bin").read_bytes() == data
    assert (await verdict(api, eventually, created))["status"] == "COMPLETED"
    assert [o["status"] for o in (await outcomes(api, created)).values()] == ["DONE"]
