"""Users and tokens from the command line, against a real server (issue 19, part 1)."""

from __future__ import annotations

import json


def test_a_user_is_added_acts_and_is_revoked_from_the_command_line(module_server) -> None:
    added = module_server.cli(
        "user", "add", "ursula", "--role", "READ", "--scope", "default", "--expires", "30d"
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert "shown this once" in added.stderr

    me = module_server.cli("whoami", "--json", "--token", token)
    assert json.loads(me.stdout)["name"] == "ursula"
    assert json.loads(me.stdout)["token_expires_at"] is not None
    listed = module_server.cli("token", "ls", "--json")
    assert token not in listed.stdout
    (mine,) = [t for t in json.loads(listed.stdout) if t["user"] == "ursula"]
    assert token.startswith(mine["prefix"])
    table = module_server.cli("token", "ls")
    assert mine["id"] in table.stdout
    assert token not in table.stdout

    refused = module_server.cli("submit", "--token", token, "local:a", "local:b")
    assert refused.returncode == 1
    assert "error: " in refused.stderr

    revoked = module_server.cli("token", "revoke", mine["id"])
    assert revoked.stdout.strip() == f"revoked token {mine['id']}"
    after = module_server.cli("whoami", "--token", token)
    assert after.returncode == 1
    assert after.stderr.strip().splitlines() == [after.stderr.strip()]
    assert "revoked" in after.stderr
    assert token not in module_server.log.read_text()


def test_a_user_without_a_scope_that_exists_is_refused_in_one_line(module_server) -> None:
    result = module_server.cli("user", "add", "victor", "--scope", "nowhere")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "no scope 'nowhere': make it first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
