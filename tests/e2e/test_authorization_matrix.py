"""Who may call what (issue 19, acceptance 1): every operation of the OpenAPI document, called
by each kind of caller against a real server, answers the status its row says. An operation
added without a row fails the test.

A row names the least role an operation needs and what it answers when allowed; whether it acts
on the default scope's objects, and what a WRITE user of another scope gets then; the callers
are derived from that in ``expected``, the same rule for every row."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from e2e_support import ServerProcess, launch, shutdown, wait_for

REFUSED_ADDRESS = "127.0.0.2"  # the administrator's token, from an address denied to it
CALLERS = (
    "nobody",
    "bad token",
    "expired",
    "revoked",
    "agent",
    "READ",
    "WRITE in scope",
    "WRITE out of scope",
    "ADMINISTRATOR",
    "refused address",
)
UNKNOWN = ("nobody", "bad token", "expired", "revoked")
PUBLIC, CAPABILITY, AGENT = "public", "capability", "agent"  # besides the roles
fresh = itertools.count(1)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    needs: str  # READ, WRITE, ADMINISTRATOR, or PUBLIC, CAPABILITY, AGENT
    ok: int
    make: Callable[[World, str], Call]  # a fresh call for that caller
    out_of_scope: int | None = None  # what WRITE of another scope gets, when the call is scoped


def expected(row: Row, caller: str) -> int:
    if row.needs == PUBLIC:
        return row.ok  # health and nothing else: every address, no token
    if row.needs == CAPABILITY:
        return 403  # a bearer token is no capability, whoever holds it
    if caller in UNKNOWN:
        return 401
    if caller == "refused address":
        return 403
    if row.needs == AGENT:
        return row.ok if caller == "agent" else 403
    if caller == "agent":
        return 403
    ladder = ["READ", "WRITE", "ADMINISTRATOR"]
    role = {"READ": "READ", "ADMINISTRATOR": "ADMINISTRATOR"}.get(caller, "WRITE")
    if ladder.index(role) < ladder.index(row.needs):
        return 403
    if caller == "WRITE out of scope" and row.out_of_scope is not None:
        return row.out_of_scope
    return row.ok


class World:
    """The server, the callers' tokens, and what the calls act on."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.admin = server.token
        (server.cwd / "a.txt").write_text("a")
        self.api("PUT", "/scopes/other", {"weight": 1})
        self.tokens = {
            "READ": self.user("rita", "READ", "default"),
            "WRITE in scope": self.user("will", "WRITE", "default"),
            "WRITE out of scope": self.user("otto", "WRITE", "other"),
            "ADMINISTRATOR": self.admin,
            "refused address": self.admin,
            "bad token": "not-a-token-at-all",
        }
        self.users = {"READ": "rita", "WRITE in scope": "will", "WRITE out of scope": "otto"}
        revoked = self.api("POST", "/tokens", {"user": "will"})
        self.api("DELETE", f"/tokens/{revoked['id']}")
        self.tokens["revoked"] = revoked["token"]
        self.tokens["expired"] = self.api("POST", "/tokens", {"user": "will", "expires_s": 1})[
            "token"
        ]
        wait_for(lambda: self.call("expired", Call("GET", "/whoami")).status_code == 401)
        secret = self.api("POST", "/agents/invite", {"name": "matrix-agent"})["secret"]
        registered = self.api(
            "POST", "/agents/register", {"name": "matrix-agent", "secret": secret}
        )
        self.agent_id = registered["id"]
        self.tokens["agent"] = registered["token"]

    def user(self, name: str, role: str, scope: str) -> str:
        body = {"name": name, "role": role, "scopes": [scope]}
        return str(self.api("POST", "/users", body)["token"]["token"])

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """As the administrator, for the setting up; it must succeed."""
        response = self.server.api(method, "/api/v1" + path, json=body)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def call(self, caller: str, call: Call) -> httpx.Response:
        headers = dict(call.headers)
        if caller in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[caller]}"
        source = REFUSED_ADDRESS if caller == "refused address" else "127.0.0.1"
        transport = httpx.HTTPTransport(local_address=source)
        path = call.path if call.path.startswith("/healthz") else "/api/v1" + call.path
        with httpx.Client(transport=transport, base_url=self.server.url, timeout=30) as client:
            if call.path.startswith("/events"):
                with client.stream(call.method, path, headers=headers) as streamed:
                    return streamed  # its status is all that is asked; the stream never ends
            return client.request(call.method, path, json=call.body, headers=headers)

    # --- what calls act on, made anew for each call ---------------------------------------
    def transfer(self) -> str:
        body = {"sources": ["local:a.txt"], "destination": f"local:out-{next(fresh)}"}
        return str(
            self.api("POST", "/transfers", {**body, "schedule": {"kind": "at", "at": "+1d"}})["id"]
        )

    def paused(self) -> str:
        transfer = self.transfer()
        self.api("POST", f"/transfers/{transfer}/pause")
        return transfer

    def drained(self, *, paused: bool) -> str:
        """A newly registered agent's name, paused if asked."""
        name = f"drain-{next(fresh)}"
        secret = self.api("POST", "/agents/invite", {"name": name})["secret"]
        self.api("POST", "/agents/register", {"name": name, "secret": secret})
        if paused:
            self.api("POST", f"/agents/{name}/pause")
        return name

    def push(self) -> str:
        body = {"destination": f"local:in-{next(fresh)}", "objects": [{"name": "x", "size": 1}]}
        return str(self.api("POST", "/transfers/push", body)["transfer"]["id"])

    def storage(self) -> str:
        name = f"matrix-{next(fresh)}"
        folder = self.server.cwd / name
        folder.mkdir()
        self.api("POST", "/storages", {"name": name, "url": folder.as_uri()})
        return name

    def granted(self) -> str:
        name = self.storage()
        self.api("PUT", f"/storages/{name}/grants/other", {"read": True})
        return name

    def channel(self) -> str:
        source = f"c{next(fresh)}"
        self.api("PUT", f"/channels/{source}/d", {"max_active": 1})
        return source

    def doomed(self) -> str:
        name = f"doomed-{next(fresh)}"
        self.api("POST", "/users", {"name": name, "role": "READ", "scopes": ["default"]})
        return name

    def token_of(self, caller: str) -> str:
        """A token the caller may revoke: one of its own (any, for an administrator)."""
        user = self.users.get(caller, "rita" if caller != "ADMINISTRATOR" else "admin")
        return str(self.api("POST", "/tokens", {"user": user})["id"])


WRONG_CAPABILITY = {"X-Ferry-Capability": "0" * 32}


def _submit(w: World, _: str) -> Call:
    return Call("POST", "/transfers", {"sources": ["local:a.txt"], "destination": "local:s"})


ROWS: dict[str, Row] = {
    "GET /healthz": Row(PUBLIC, 200, lambda w, c: Call("GET", "/healthz")),
    "GET /api/v1/healthz": Row(PUBLIC, 200, lambda w, c: Call("GET", "/healthz")),
    # transfers
    "POST /api/v1/transfers": Row("WRITE", 201, _submit, out_of_scope=403),
    "GET /api/v1/transfers": Row("READ", 200, lambda w, c: Call("GET", "/transfers")),
    "GET /api/v1/transfers/{transfer_id}": Row(
        "READ", 200, lambda w, c: Call("GET", f"/transfers/{w.transfer()}"), out_of_scope=404
    ),
    "POST /api/v1/transfers/{transfer_id}/cancel": Row(
        "WRITE", 200, lambda w, c: Call("POST", f"/transfers/{w.transfer()}/cancel"), 404
    ),
    "POST /api/v1/transfers/{transfer_id}/pause": Row(
        "WRITE", 200, lambda w, c: Call("POST", f"/transfers/{w.transfer()}/pause"), 404
    ),
    "POST /api/v1/transfers/{transfer_id}/resume": Row(
        "WRITE", 200, lambda w, c: Call("POST", f"/transfers/{w.paused()}/resume"), 404
    ),
    "POST /api/v1/transfers/{transfer_id}/rerun": Row(
        "WRITE", 201, lambda w, c: Call("POST", f"/transfers/{w.transfer()}/rerun"), 404
    ),
    "GET /api/v1/transfers/{transfer_id}/runs": Row(
        "READ", 200, lambda w, c: Call("GET", f"/transfers/{w.transfer()}/runs"), 404
    ),
    "GET /api/v1/transfers/{transfer_id}/outcomes": Row(
        "READ", 200, lambda w, c: Call("GET", f"/transfers/{w.transfer()}/outcomes"), 404
    ),
    "POST /api/v1/transfers/plan": Row(
        "WRITE",
        200,
        lambda w, c: Call(
            "POST", "/transfers/plan", {"sources": ["local:a.txt"], "destination": "local:s"}
        ),
        out_of_scope=403,
    ),
    "GET /api/v1/transfers/{transfer_id}/plan": Row(
        "WRITE", 200, lambda w, c: Call("GET", f"/transfers/{w.transfer()}/plan"), 404
    ),
    "GET /api/v1/events": Row(
        "READ", 200, lambda w, c: Call("GET", f"/events?transfer={w.transfer()}"), 404
    ),
    # push and pull: made with a token, then driven by the capability alone
    "POST /api/v1/transfers/push": Row(
        "WRITE",
        201,
        lambda w, c: Call(
            "POST", "/transfers/push", {"destination": "local:p", "objects": [{"name": "x"}]}
        ),
        out_of_scope=403,
    ),
    "POST /api/v1/transfers/pull": Row(
        "WRITE",
        201,
        lambda w, c: Call("POST", "/transfers/pull", {"sources": ["local:a.txt"]}),
        403,
    ),
    "PUT /api/v1/transfers/{transfer_id}/data/{name}": Row(
        CAPABILITY,
        0,
        lambda w, c: Call("PUT", f"/transfers/{w.push()}/data/x", None, WRONG_CAPABILITY),
    ),
    "GET /api/v1/transfers/{transfer_id}/data/{name}": Row(
        CAPABILITY,
        0,
        lambda w, c: Call("GET", f"/transfers/{w.push()}/data/x", None, WRONG_CAPABILITY),
    ),
    "POST /api/v1/transfers/{transfer_id}/received/{name}": Row(
        CAPABILITY,
        0,
        lambda w, c: Call(
            "POST", f"/transfers/{w.push()}/received/x", {"state": "DONE"}, WRONG_CAPABILITY
        ),
    ),
    "POST /api/v1/transfers/{transfer_id}/skipped": Row(
        CAPABILITY,
        0,
        lambda w, c: Call(
            "POST", f"/transfers/{w.push()}/skipped", {"names": ["x"]}, WRONG_CAPABILITY
        ),
    ),
    "POST /api/v1/transfers/{transfer_id}/close": Row(
        CAPABILITY,
        0,
        lambda w, c: Call("POST", f"/transfers/{w.push()}/close", None, WRONG_CAPABILITY),
    ),
    # agents
    "POST /api/v1/agents/invite": Row(
        "ADMINISTRATOR",
        201,
        lambda w, c: Call("POST", "/agents/invite", {"name": f"inv-{next(fresh)}"}),
    ),
    "GET /api/v1/agents": Row("READ", 200, lambda w, c: Call("GET", "/agents")),
    "POST /api/v1/agents/{agent}/pause": Row(
        "ADMINISTRATOR",
        200,
        lambda w, c: Call("POST", f"/agents/{w.drained(paused=False)}/pause"),
    ),
    "POST /api/v1/agents/{agent}/resume": Row(
        "ADMINISTRATOR",
        200,
        lambda w, c: Call("POST", f"/agents/{w.drained(paused=True)}/resume"),
    ),
    "GET /api/v1/agents/{agent_id}": Row(
        "READ", 200, lambda w, c: Call("GET", f"/agents/{w.agent_id}")
    ),
    "GET /api/v1/agents/{agent_id}/stats": Row(
        "READ", 200, lambda w, c: Call("GET", f"/agents/{w.agent_id}/stats")
    ),
    "POST /api/v1/agents/{agent_id}/lease": Row(
        AGENT,
        200,
        lambda w, c: Call("POST", f"/agents/{w.agent_id}/lease", {"max_tasks": 1, "wait_s": 0}),
    ),
    "POST /api/v1/agents/{agent_id}/report": Row(
        AGENT, 200, lambda w, c: Call("POST", f"/agents/{w.agent_id}/report", [])
    ),
    "POST /api/v1/agents/{agent_id}/results": Row(
        AGENT, 200, lambda w, c: Call("POST", f"/agents/{w.agent_id}/results", {})
    ),
    "POST /api/v1/agents/{agent_id}/heartbeat": Row(
        AGENT, 200, lambda w, c: Call("POST", f"/agents/{w.agent_id}/heartbeat", {"active": []})
    ),
    "POST /api/v1/agents/{agent_id}/answer": Row(
        AGENT,
        200,
        lambda w, c: Call("POST", f"/agents/{w.agent_id}/answer", {"id": "0", "ok": True}),
    ),
    # remote commands (an administrator's off names no agent that exists: the server stays)
    "POST /api/v1/admin/reconfig": Row(
        "ADMINISTRATOR", 200, lambda w, c: Call("POST", "/admin/reconfig", {})
    ),
    "POST /api/v1/admin/config": Row(
        "ADMINISTRATOR", 200, lambda w, c: Call("POST", "/admin/config", {"key": "port"})
    ),
    "POST /api/v1/admin/off": Row(
        "ADMINISTRATOR",
        404,
        lambda w, c: Call("POST", "/admin/off", {"agent": f"absent-{next(fresh)}"}),
    ),
    # storages
    "GET /api/v1/storages": Row("READ", 200, lambda w, c: Call("GET", "/storages")),
    "POST /api/v1/storages": Row(
        "ADMINISTRATOR",
        201,
        lambda w, c: Call(
            "POST", "/storages", {"name": f"new-{next(fresh)}", "url": w.server.cwd.as_uri()}
        ),
    ),
    "GET /api/v1/storages/{name}": Row(
        "READ", 200, lambda w, c: Call("GET", "/storages/local"), out_of_scope=404
    ),
    "GET /api/v1/storages/{name}/entries": Row(
        "READ", 200, lambda w, c: Call("GET", "/storages/local/entries"), out_of_scope=403
    ),
    "PUT /api/v1/storages/{name}": Row(
        "ADMINISTRATOR",
        200,
        lambda w, c: (
            (n := w.storage())
            and Call("PUT", f"/storages/{n}", {"name": n, "url": (w.server.cwd / n).as_uri()})
        ),
    ),
    "DELETE /api/v1/storages/{name}": Row(
        "ADMINISTRATOR", 204, lambda w, c: Call("DELETE", f"/storages/{w.storage()}")
    ),
    "PUT /api/v1/storages/{name}/grants/{scope}": Row(
        "ADMINISTRATOR",
        200,
        lambda w, c: Call("PUT", f"/storages/{w.storage()}/grants/other", {"read": True}),
    ),
    "DELETE /api/v1/storages/{name}/grants/{scope}": Row(
        "ADMINISTRATOR", 204, lambda w, c: Call("DELETE", f"/storages/{w.granted()}/grants/other")
    ),
    # channels and scopes
    "GET /api/v1/channels": Row("READ", 200, lambda w, c: Call("GET", "/channels")),
    "PUT /api/v1/channels/{source_site}/{destination_site}": Row(
        "ADMINISTRATOR",
        200,
        lambda w, c: Call("PUT", f"/channels/s{next(fresh)}/d", {"max_active": 2}),
    ),
    "DELETE /api/v1/channels/{source_site}/{destination_site}": Row(
        "ADMINISTRATOR", 204, lambda w, c: Call("DELETE", f"/channels/{w.channel()}/d")
    ),
    "GET /api/v1/scopes": Row("READ", 200, lambda w, c: Call("GET", "/scopes")),
    "PUT /api/v1/scopes/{name}": Row(
        "ADMINISTRATOR", 200, lambda w, c: Call("PUT", f"/scopes/sc{next(fresh)}", {"weight": 2})
    ),
    # users, tokens, audit
    "GET /api/v1/users": Row("ADMINISTRATOR", 200, lambda w, c: Call("GET", "/users")),
    "POST /api/v1/users": Row(
        "ADMINISTRATOR",
        201,
        lambda w, c: Call(
            "POST", "/users", {"name": f"u{next(fresh)}", "role": "READ", "scopes": ["default"]}
        ),
    ),
    "DELETE /api/v1/users/{name}": Row(
        "ADMINISTRATOR", 204, lambda w, c: Call("DELETE", f"/users/{w.doomed()}")
    ),
    "GET /api/v1/tokens": Row("READ", 200, lambda w, c: Call("GET", "/tokens")),
    "POST /api/v1/tokens": Row("READ", 201, lambda w, c: Call("POST", "/tokens", {})),
    "DELETE /api/v1/tokens/{token_id}": Row(
        "READ", 204, lambda w, c: Call("DELETE", f"/tokens/{w.token_of(c)}")
    ),
    "GET /api/v1/whoami": Row("READ", 200, lambda w, c: Call("GET", "/whoami")),
    "GET /api/v1/audit": Row("ADMINISTRATOR", 200, lambda w, c: Call("GET", "/audit")),
    "GET /api/v1/audit/verify": Row(
        "ADMINISTRATOR", 200, lambda w, c: Call("GET", "/audit/verify")
    ),
    # last: registering and leaving change the agent's standing
    "POST /api/v1/agents/register": Row(
        "ADMINISTRATOR",
        200,
        lambda w, c: Call("POST", "/agents/register", {"name": f"reg-{next(fresh)}"}),
    ),
    "POST /api/v1/agents/{agent_id}/leave": Row(
        AGENT, 200, lambda w, c: Call("POST", f"/agents/{w.agent_id}/leave", {})
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("matrix")
    server = launch(root / "work", "--agents", "0", "--deny", f"ADMINISTRATOR={REFUSED_ADDRESS}/32")
    try:
        yield World(server)
    finally:
        shutdown(server)


def operations(world: World) -> list[str]:
    document = world.server.api("GET", "/api/v1/openapi.json").json()
    methods = ("get", "put", "post", "delete", "patch")
    return [
        f"{m.upper()} {path}"
        for path, ops in document["paths"].items()
        for m in ops
        if m in methods
    ]


def test_every_operation_has_its_row(world: World) -> None:
    listed = operations(world)
    assert sorted(set(listed) - set(ROWS)) == [], "operations without a row in ROWS"
    assert sorted(set(ROWS) - set(listed)) == [], "rows for operations the server no longer has"


def test_every_caller_gets_what_its_row_says(world: World) -> None:
    wrong: list[str] = []
    for operation, row in ROWS.items():
        for caller in CALLERS:
            response = world.call(caller, row.make(world, caller))
            want = expected(row, caller)
            if response.status_code != want:
                wrong.append(f"{operation} as {caller}: {response.status_code}, expected {want}")
            elif response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", operation
    assert wrong == [], "\n".join(wrong)
