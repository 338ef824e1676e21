"""No secret leaves its place (issue 19, acceptance 6). Real servers at DEBUG with a log folder,
a local agent and a remote one, three users in two scopes, a storage behind a password, a
notify URL with a query, a push, refused and revoked tokens; then every secret the scenario
made (tokens, the agent's one-time secret and kept tokens, the server's key, the storage
password, the push capability, the notify URL's query) is looked for in every log, in ``ps``,
in every CLI output but the three that print a secret once, in the audit trail, and in every
answer the other scope's user and a READ user of the same scope get."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from daemon_support import AgentProcess, Daemons, wait_agent
from e2e_support import FERRY, ServerProcess, free_port, wait_for
from storage_servers import webdav_server_with_password

from ferry.client import Client

DAV_PASSWORD = "dav-password-Quokka-93187"
NOTIFY_TOKEN = "notify-token-Wombat-55102"
NOTIFY_KEY = "notify-key-Dingo-70413"
NOTIFY_QUERY = ("the notify URL's query (token=)", "the notify URL's query (key=)")
WRONG_TOKEN = "wrong-token-Numbat-0123456789abcdef"

# What a user of the other scope, and a READ user, may ask of the API.
READABLE = (
    "/api/v1/transfers",
    "/api/v1/storages",
    "/api/v1/agents",
    "/api/v1/tokens",
    "/api/v1/whoami",
    "/api/v1/scopes",
    "/api/v1/channels",
    "/api/v1/openapi.json",
)


class Scenario:
    """The servers of one test (the current one in ``server``), the secrets it made by
    description, and every place they must not show, by name, with the secrets each place
    may legitimately show."""

    def __init__(self, daemons: Daemons) -> None:
        self.daemons = daemons
        self.server: ServerProcess
        self.secrets: dict[str, str] = {}
        self.places: dict[str, tuple[str, frozenset[str]]] = {}

    def secret(self, name: str, value: str) -> str:
        assert len(value) >= 8, name
        self.secrets[name] = value
        return value

    def kept(self, name: str, path: Path) -> None:
        """A secret kept in a file: each value it held counts (a registration writes anew)."""
        value = path.read_text().strip()
        if value not in self.secrets.values():
            self.secret(f"{name} (read from {path.name} as secret {len(self.secrets) + 1})", value)

    def look(self, place: str, text: str, allowed: Iterable[str] = ()) -> None:
        self.places[f"{place} [{len(self.places) + 1}]"] = (text, frozenset(allowed))

    def cli(
        self,
        *args: str,
        token: str | None = None,
        expect: int = 0,
        shows_secret: bool = False,
        allowed: Iterable[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """``ferry ARGS``, exiting ``expect``, the token in the environment (never on a command
        line, where ps shows it); its output is looked at unless the command is meant to show
        a secret."""
        env = {**self.server.env(), **({"FERRY_TOKEN": token} if token else {})}
        result = subprocess.run(
            [*FERRY, *args],
            cwd=self.server.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        if not shows_secret:
            self.look(f"ferry {' '.join(args)}", f"{result.stdout}\n{result.stderr}", allowed)
        return result

    def cli_json(self, *args: str, token: str | None = None, **kwargs: Any) -> Any:
        return json.loads(self.cli(*args, "--json", token=token, **kwargs).stdout)

    def ask(
        self, who: str, token: str, path: str, expected: int = 200, allowed: Iterable[str] = ()
    ) -> httpx.Response:
        response = httpx.get(
            self.server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert response.status_code == expected, (who, path, response.text)
        self.look(f"GET {path} as {who}", response.text, allowed)
        return response

    def processes(self, when: str, *expected: str) -> None:
        """Every command line on the machine, unabridged, as ``ps`` shows it."""
        shown = subprocess.run(
            ["ps", "-e", "-ww", "-o", "args="], capture_output=True, text=True, check=True
        ).stdout
        for command in expected:
            assert command in shown, (when, command)
        self.look(f"ps output {when}", shown)

    def leaks(self) -> list[str]:
        return [
            f"{name} in {place}"
            for name, value in self.secrets.items()
            for place, (text, allowed) in self.places.items()
            if name not in allowed and value in text
        ]


def remote_agent(scene: Scenario, folder: Path, name: str, secret: str) -> AgentProcess:
    """``ferry agent`` as its invitation says: the one-time secret in the environment."""
    folder.mkdir()
    log = folder.parent / f"agent-{name}.out"
    out = log.open("wb")
    command = [*FERRY, "agent", "--server", scene.server.url, "--name", name]
    command += ["--log-dir", str(folder / "logs"), "--log-level", "DEBUG"]
    env = {**scene.server.env(), "FERRY_AGENT_SECRET": secret}
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    agent = AgentProcess(name, process, log, out)
    scene.daemons.agents.append(agent)
    return agent


def moved_by(scene: Scenario, transfer_id: str) -> set[str]:
    """The names of the agents that copied the transfer's objects."""
    names = {agent["id"]: agent["name"] for agent in scene.cli_json("agents")}
    outcomes = scene.cli_json("outcomes", transfer_id)
    return {names[a["agent"]] for obj in outcomes["objects"] for a in obj["history"]}


def set_up_users_and_storages(scene: Scenario, dav_url: str) -> dict[str, str]:
    """Two scopes, three users (a READ one beside phil in physics) and a storage behind a
    password granted to physics; returns the users' tokens."""
    tokens = {}
    for scope in ("physics", "biology"):
        scene.cli("scope", "set", scope, "--weight", "1")
        scene.cli("storage", "grant", "local", "--scope", scope, "--read", "--write")
    for user, role, scope in (
        ("phil", "WRITE", "physics"),
        ("rita", "READ", "physics"),
        ("bill", "WRITE", "biology"),
    ):
        # `user add` prints the token, this once: its output is the one place it shows.
        added = scene.cli_json(
            "user", "add", user, "--role", role, "--scope", scope, shows_secret=True
        )
        tokens[user] = scene.secret(f"{user}'s token", added["token"]["token"])
    auth = json.dumps(["ferry", DAV_PASSWORD])
    scene.cli("storage", "add", "dav", dav_url, "--credential", f"auth={auth}")
    scene.cli("storage", "grant", "dav", "--scope", "physics", "--read", "--write")
    return tokens


def test_no_secret_shows_in_logs_ps_or_other_users_answers(
    daemons: Daemons, tmp_path: Path
) -> None:
    scene = Scenario(daemons)
    logs = tmp_path / "logs"
    work = tmp_path / "work"
    debug = ("--log-dir", str(logs), "--log-level", "DEBUG")
    scene.secret("the storage password", DAV_PASSWORD)
    scene.secret(NOTIFY_QUERY[0], NOTIFY_TOKEN)
    scene.secret(NOTIFY_QUERY[1], NOTIFY_KEY)
    scene.secret("a wrong token presented", WRONG_TOKEN)

    with webdav_server_with_password(tmp_path / "dav", "ferry", DAV_PASSWORD) as dav:
        # First the server with one local agent, which moves bill's file.
        scene.server = daemons.server("--agents", "1", *debug, cwd=work)
        scene.secret("the admin token", scene.server.token)
        scene.secret("the server's key", (work / ".ferry" / "secret.key").read_text().strip())
        tokens = set_up_users_and_storages(scene, dav.url)
        (work / "a.txt").write_text("phil's data")
        (work / "b.txt").write_text("bill's data")
        bills = scene.cli_json(
            "submit",
            "--wait",
            "local:b.txt",
            "local:bill-in",
            "--scope",
            "biology",
            token=tokens["bill"],
        )
        assert bills["status"] == "COMPLETED", bills
        assert moved_by(scene, bills["id"]) == {"local-1"}
        scene.kept("agent local-1's kept token", work / ".ferry" / "agent-local-1.token")

        captured: list[str] = []
        with Client(scene.server.url, tokens["bill"]) as client:
            pushed = client.push(
                [work / "b.txt"],
                "local:bill-pushed",
                scope="biology",
                started=lambda created: captured.append(created.capability),
            )
        assert pushed.status == "COMPLETED"
        scene.secret("bill's push capability", captured[0])
        scene.processes(
            "beside the server and its local agent", f"--port {scene.server.port}", "--name local-1"
        )
        scene.server.stop()

        # Then the same server without local agents, and a remote agent invited to it.
        scene.server = daemons.server("--agents", "0", *debug, cwd=work)
        # `agent-invite` prints the one-time secret (and the command holding it), this once.
        invitation = scene.cli_json("agent-invite", "edge", shows_secret=True)
        secret = scene.secret("agent edge's one-time secret", invitation["secret"])
        edge = remote_agent(scene, tmp_path / "edge", "edge", secret)
        wait_agent(scene.server, "edge", heard=False)
        kept = tmp_path / "edge" / ".ferry" / "agent-edge.token"
        wait_for(kept.exists)  # the agent keeps it once the server's answer reached it
        scene.kept("agent edge's kept token", kept)
        scene.processes("beside the remote agent", "--name edge")

        hook = f"http://127.0.0.1:{free_port()}/hook?token={NOTIFY_TOKEN}&key={NOTIFY_KEY}"
        phils = scene.cli_json(
            "submit",
            "--wait",
            "local:a.txt",
            "dav:phil",
            "--scope",
            "physics",
            "--notify",
            hook,
            token=tokens["phil"],
            allowed=NOTIFY_QUERY,
        )
        assert phils["status"] == "COMPLETED", phils
        assert phils["options"]["notify"] == hook  # its own scope's WRITE user sees it
        assert moved_by(scene, phils["id"]) == {"edge"}
        assert (tmp_path / "dav" / "root" / "data" / "phil" / "a.txt").read_text() == "phil's data"
        # Nothing listens there: the failed post is logged (without the query, it must be).
        hook_failed = f"hook for transfer {phils['id']} run 1"
        server_log = logs / "server.log"
        wait_for(lambda: hook_failed in server_log.read_text(errors="replace"), timeout=30)
        scene.processes("after the remote agent moved a file", "--name edge")

        # Tokens: another of phil's, revoked; it and a wrong one refused.
        # `token create` prints the token, this once.
        another = scene.cli_json("token", "create", token=tokens["phil"], shows_secret=True)
        revoked = scene.secret("phil's second token (revoked)", another["token"])
        scene.cli("whoami", token=revoked)
        listed = scene.cli_json("token", "ls", token=tokens["phil"])
        assert another["id"] in [t["id"] for t in listed]
        scene.cli("token", "revoke", another["id"], token=tokens["phil"])
        for refused in (revoked, WRONG_TOKEN):
            scene.cli("ls", token=refused, expect=1)
            scene.cli("submit", "local:a.txt", "local:x", token=refused, expect=1)
            scene.ask("a refused token", refused, "/api/v1/transfers", expected=401)

        # What each may read: the other scope's user, a READ user of phil's scope, and phil.
        for who in ("bill", "rita"):
            for path in READABLE:
                scene.ask(who, tokens[who], path)
            scene.cli("ls", "--json", token=tokens[who])
            scene.cli(
                "status", phils["id"], "--json", token=tokens[who], expect=1 if who == "bill" else 0
            )
            scene.cli("storage", "ls", "--json", token=tokens[who])
            scene.cli("agents", "--json", token=tokens[who])
            scene.cli("whoami", token=tokens[who])
            scene.cli("token", "ls", token=tokens[who])
        scene.ask("bill", tokens["bill"], f"/api/v1/transfers/{phils['id']}", expected=404)
        seen = scene.ask("rita", tokens["rita"], f"/api/v1/transfers/{phils['id']}").json()
        assert seen["id"] == phils["id"]
        assert "notify" not in seen["options"]
        mine = scene.ask(
            "phil", tokens["phil"], f"/api/v1/transfers/{phils['id']}", allowed=NOTIFY_QUERY
        )
        assert mine.json()["options"]["notify"] == hook

        # The administrator's views: the audit trail shows no secret, the notify URL shows.
        audit = scene.ask("admin", scene.server.token, "/api/v1/audit?limit=10000")
        actions = " ".join(record["action"] for record in audit.json())
        assert "/tokens/" in actions, actions  # the revocation, and the registration:
        assert "/agents/register" in actions, actions  # calls whose bodies held secrets
        scene.cli("audit", "ls", "--json")
        scene.cli("storage", "ls", "--json")
        scene.cli("agents", "--json")
        scene.cli("ls", "--json", allowed=NOTIFY_QUERY)
        scene.cli("outcomes", phils["id"], "--json")
        scene.cli("token", "ls", "--json")

        edge.process.send_signal(signal.SIGTERM)
        assert edge.wait(60) == 0
        scene.kept("agent edge's kept token", kept)
        scene.server.stop()

    for folder in (logs, tmp_path / "edge" / "logs"):
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        assert files, folder
        for path in files:
            scene.look(str(path), path.read_text(errors="replace"))
    assert hook_failed in (logs / "server.log").read_text()
    for server in daemons.servers:
        scene.look(f"standard error of the server on port {server.port}", server.log.read_text())
    scene.look("standard error of agent edge", edge.log.read_text(errors="replace"))

    leaks = scene.leaks()
    assert not leaks, "secrets shown where they must not be:\n" + "\n".join(leaks)
