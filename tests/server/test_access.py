"""Where callers may come from (issue 19, part 3): per role, ``deny`` networks refuse and a
non-empty ``allow`` list admits only its networks, through the real app with the caller's
address set on httpx's ASGI transport."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ferry.cli.daemons import parse_access
from ferry.config import ServerSettings
from ferry.daemon.config import load_settings
from ferry.errors import ConfigError, InvalidRequest
from ferry.server.app import create_app
from ferry.server.reload import reload_settings
from ferry.server.state import ServerState

PROBLEM = "application/problem+json"
Caller = Callable[..., httpx.AsyncClient]


@asynccontextmanager
async def running(settings: ServerSettings) -> AsyncIterator[tuple[FastAPI, str]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, (settings.data_dir / "admin.token").read_text().strip()


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``serve(access)``: the app with these rules; then ``caller(address, token)`` is an httpx
    client whose requests come from ``address``."""
    stack: list[Any] = []

    async def start(access: dict[str, Any], config: Path | None = None) -> Caller:
        (tmp_path / "root").mkdir(exist_ok=True)
        settings = ServerSettings(
            data_dir=tmp_path / ".ferry", agents=0, local_root=tmp_path / "root", access=access
        )
        context = running(settings)
        app, admin = await context.__aenter__()
        app.state.ferry.config = config
        stack.append(context)

        def caller(address: str, token: str | None = admin) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            client = httpx.AsyncClient(transport=transport, base_url="http://f", headers=headers)
            stack.append(client)
            return client

        caller.state = app.state.ferry
        return caller

    yield start
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


async def user_token(caller: Caller, name: str, role: str) -> str:
    body = {"name": name, "role": role, "scopes": ["default"]}
    response = await caller("127.0.0.1").post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"]["token"])


async def test_an_administrator_outside_its_allowed_networks_gets_403_with_the_reason(
    serve: Callable[..., Any],
) -> None:
    caller = await serve({"ADMINISTRATOR": {"allow": ["127.0.0.1", "10.0.0.0/8"]}})

    assert (await caller("10.1.2.3").get("/api/v1/storages")).status_code == 200
    refused = await caller("192.168.7.9").get("/api/v1/storages")

    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["detail"] == (
        "ADMINISTRATOR callers are refused from 192.168.7.9:"
        " not in the allowed networks (127.0.0.1/32, 10.0.0.0/8)"
    )


async def test_deny_wins_over_allow(serve: Callable[..., Any]) -> None:
    caller = await serve(
        {"ADMINISTRATOR": {"allow": ["0.0.0.0/0"], "deny": ["10.1.0.0/16", "2001:db8::/32"]}}
    )

    assert (await caller("10.2.0.1").get("/api/v1/storages")).status_code == 200
    for address, network in (("10.1.2.3", "10.1.0.0/16"), ("2001:db8::5", "2001:db8::/32")):
        refused = await caller(address).get("/api/v1/storages")
        assert refused.status_code == 403
        assert refused.json()["detail"].endswith(f"from {address}: denied by {network}")


async def test_rules_apply_to_their_role_only_and_an_empty_allow_admits_all(
    serve: Callable[..., Any],
) -> None:
    caller = await serve({"READ": {"deny": ["10.9.0.0/16"]}, "ADMINISTRATOR": {"allow": []}})
    reader = await user_token(caller, "rita", "READ")
    writer = await user_token(caller, "walt", "WRITE")

    assert (await caller("10.9.0.1", reader).get("/api/v1/transfers")).status_code == 403
    assert (await caller("10.8.0.1", reader).get("/api/v1/transfers")).status_code == 200
    assert (await caller("10.9.0.1", writer).get("/api/v1/transfers")).status_code == 200
    assert (await caller("10.9.0.1").get("/api/v1/transfers")).status_code == 200


async def test_a_refused_address_is_checked_after_the_token(serve: Callable[..., Any]) -> None:
    """No token or a bad one is 401 from anywhere: the role, and so the rule, is not known."""
    caller = await serve({"ADMINISTRATOR": {"deny": ["0.0.0.0/0"]}})

    assert (await caller("10.0.0.1", None).get("/api/v1/storages")).status_code == 401
    assert (await caller("10.0.0.1", "not-a-token").get("/api/v1/storages")).status_code == 401


async def test_routes_without_a_token_answer_every_address(serve: Callable[..., Any]) -> None:
    caller = await serve({role: {"deny": ["0.0.0.0/0"]} for role in ("READ", "ADMINISTRATOR")})

    assert (await caller("10.0.0.1", None).get("/healthz")).status_code == 200
    assert (await caller("10.0.0.1", None).get("/api/v1/openapi.json")).status_code == 200


async def test_an_agent_registers_and_works_only_from_the_daemon_networks(
    serve: Callable[..., Any],
) -> None:
    caller = await serve({"DAEMON": {"allow": ["172.16.0.0/12"]}})
    store = caller.state.store

    async def register(address: str, name: str) -> httpx.Response:
        secret = await store.issue_agent_secret(name, timedelta(minutes=1))
        body = {"secret": secret, "name": name}
        return await caller(address, None).post("/api/v1/agents/register", json=body)

    refused = await register("10.0.0.1", "edge-1")
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "DAEMON callers are refused from 10.0.0.1: not in the allowed networks (172.16.0.0/12)"
    )
    registered = await register("172.16.5.5", "edge-2")
    assert registered.status_code == 200
    agent, token = registered.json()["id"], registered.json()["token"]
    heartbeat = {"active": [], "state": {}}
    path = f"/api/v1/agents/{agent}/heartbeat"
    assert (await caller("172.16.5.5", token).post(path, json=heartbeat)).status_code == 200
    assert (await caller("10.0.0.1", token).post(path, json=heartbeat)).status_code == 403


async def test_an_ipv4_caller_of_a_dual_stack_socket_matches_ipv4_rules(
    serve: Callable[..., Any],
) -> None:
    caller = await serve({"ADMINISTRATOR": {"deny": ["10.0.0.0/8"]}})

    assert (await caller("::ffff:10.0.0.1").get("/api/v1/storages")).status_code == 403


@pytest.fixture
def kept_logging() -> Iterator[None]:
    """A reload reconfigures the process's logging: put the root's handlers back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_a_reload_changes_the_rules_for_the_next_request(
    serve: Callable[..., Any], tmp_path: Path, kept_logging: None
) -> None:
    config = tmp_path / "ferry.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path}/.ferry"\nlocal_root = "{tmp_path}/root"\nagents = 0\n'
    )
    caller = await serve({}, config)
    state: ServerState = caller.state
    assert (await caller("10.0.0.1").get("/api/v1/storages")).status_code == 200

    with config.open("a") as file:
        file.write('[server.access.ADMINISTRATOR]\ndeny = ["10.0.0.0/8"]\n')
    assert await reload_settings(state, config, {})

    assert (await caller("10.0.0.1").get("/api/v1/storages")).status_code == 403
    assert (await caller("127.0.0.1").get("/api/v1/storages")).status_code == 200


def test_the_rules_are_read_from_the_file_and_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "ferry.toml"
    config.write_text(
        '[server.access.write]\nallow = ["10.0.0.0/8"]\n[server.access.DAEMON]\nallow = ["::1"]\n'
    )
    from_file = load_settings(ServerSettings, path=config, section="server", given={})
    assert [str(n) for n in from_file.access["WRITE"].allow] == ["10.0.0.0/8"]

    given = {"access": parse_access(["daemon=192.0.2.0/24"], ["DAEMON=192.0.2.7"])}
    from_options = load_settings(ServerSettings, path=config, section="server", given=given)
    assert set(from_options.access) == {"WRITE", "DAEMON"}
    rules = from_options.access[
        "DAEMON"
    ]  # a role on the command line: its rules replace the file's
    assert ([str(n) for n in rules.allow], [str(n) for n in rules.deny]) == (
        ["192.0.2.0/24"],
        ["192.0.2.7/32"],
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[server.access.ROOT]\nallow = []", "unknown role 'ROOT'"),
        ('[server.access.READ]\nallow = ["10.0.0.300/8"]', "server.access.READ.allow.0"),
        ('[server.access.READ]\nallow = ["10.0.0.1/8"]', "server.access.READ.allow.0"),
        ('[server.access.READ]\npermit = ["10.0.0.0/8"]', "unknown key"),
    ],
)
def test_a_bad_rule_stops_the_server_with_its_key(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "ferry.toml"
    config.write_text(table + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(ServerSettings, path=config, section="server", given={})


def test_an_option_that_is_not_role_equals_cidr_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="expected ROLE=CIDR"):
        parse_access(["10.0.0.0/8"], [])
