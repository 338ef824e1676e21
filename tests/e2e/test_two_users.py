"""Two users in two scopes against a real server (issue 19, acceptance 3): each sees, hears of
and cancels only its own transfers; neither submits into a scope it does not hold nor uses a
storage its scope is not granted."""

from __future__ import annotations

import json
import sys

from test_event_streams import FOLLOW_ALL, Lines, child


def one_line_error(result, *expected: str) -> None:
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr


def test_two_users_in_two_scopes_keep_to_their_own(start_server) -> None:
    server = start_server()
    (server.cwd / "a.txt").write_text("a")
    (server.cwd / "vault").mkdir()
    token = {}
    for user, scope in (("phil", "physics"), ("bill", "biology")):
        server.cli("scope", "set", scope, "--weight", "1", check=True)
        server.cli("storage", "grant", "local", "--scope", scope, "--read", "--write", check=True)
        added = server.cli_json("user", "add", user, "--role", "WRITE", "--scope", scope)
        token[user] = added["token"]["token"]
    server.cli("storage", "add", "vault", (server.cwd / "vault").as_uri(), check=True)

    def as_user(user: str, *args: str):
        return server.cli(*args, "--token", token[user])

    with child([sys.executable, "-c", FOLLOW_ALL, server.url, token["phil"]]) as follow:
        heard = Lines(follow.stdout)
        assert heard.next() == b"listening\n"  # hears every change from here on
        later = ("--at", "+1h", "local:a.txt")
        bills = json.loads(
            as_user("bill", "submit", *later, "local:b1", "--scope", "biology", "--json").stdout
        )
        phils = json.loads(
            as_user("phil", "submit", *later, "local:p1", "--scope", "physics", "--json").stdout
        )
        assert heard.next() == b"event: transfer\n"
        first = json.loads(heard.next().removeprefix(b"data: "))
        assert first["transfer"] == phils["id"]  # bill's came first, and phil never hears of it

    for user, mine, theirs in (("phil", phils, bills), ("bill", bills, phils)):
        listed = json.loads(as_user(user, "ls", "--json").stdout)
        assert [t["id"] for t in listed] == [mine["id"]]
        one_line_error(as_user(user, "status", theirs["id"]), "not found")
        one_line_error(as_user(user, "cancel", theirs["id"]), "not found")
    assert as_user("phil", "cancel", phils["id"]).returncode == 0
    assert server.cli_json("status", bills["id"])["status"] == "STANDBY"

    one_line_error(
        as_user("phil", "submit", "local:a.txt", "local:x", "--scope", "biology"),
        "may not submit into scope 'biology'",
    )
    one_line_error(
        as_user("phil", "submit", "local:a.txt", "vault:x", "--scope", "physics"),
        "scope 'physics' may not write storage 'vault'",
        "ferry storage grant vault --scope physics --write",
    )
    seen = json.loads(as_user("phil", "storage", "ls", "--json").stdout)
    assert [s["name"] for s in seen] == ["local"]
    assert [g["scope"] for g in seen[0]["grants"]] == ["physics"]

    server.cli("storage", "grant", "vault", "--scope", "physics", "--write", check=True)
    moved = as_user("phil", "submit", "--wait", "local:a.txt", "vault:x", "--scope", "physics")
    assert moved.returncode == 0, moved.stderr
    assert (server.cwd / "vault" / "x" / "a.txt").read_text() == "a"
