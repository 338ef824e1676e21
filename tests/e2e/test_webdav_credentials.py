"""A WebDAV storage behind a password, against a real wsgidav on 127.0.0.1: a tree copies both
ways, and the password appears nowhere a READ token, the CLI or a log could show it, not even
when the server refuses a wrong one."""

from __future__ import annotations

import json
from pathlib import Path

from e2e_support import ServerProcess
from storage_servers import webdav_server_with_password

PASSWORD = "correct-horse-battery-staple-4711"
WRONG = "not-the-password-0815"


def test_a_tree_copies_both_ways_and_no_password_shows(start_server, tmp_path: Path) -> None:
    with webdav_server_with_password(tmp_path / "dav", "ferry", PASSWORD) as dav:
        server: ServerProcess = start_server()
        for name, password in (("dav", PASSWORD), ("davwrong", WRONG)):
            auth = json.dumps(["ferry", password])
            server.cli("storage", "add", name, dav.url, "--credential", f"auth={auth}", check=True)
        (server.cwd / "up" / "deep").mkdir(parents=True)
        (server.cwd / "up" / "a.txt").write_text("a")
        (server.cwd / "up" / "deep" / "b.bin").write_bytes(b"b" * 70_000)

        there = server.cli_json("submit", "--tree", "--wait", "local:up", "dav:tree")
        back = server.cli_json("submit", "--tree", "--wait", "dav:tree", "local:down")
        refused = server.cli("submit", "--tree", "--wait", "davwrong:tree", "local:never", "--json")

        assert there["status"] == back["status"] == "COMPLETED", (there, back)
        assert (server.cwd / "down" / "deep" / "b.bin").read_bytes() == b"b" * 70_000
        assert (tmp_path / "dav" / "root" / "data" / "tree" / "a.txt").read_text() == "a"
        assert refused.returncode == 1

        shown = [
            server.cli("storage", "ls", "--json", check=True).stdout,
            server.cli("agents", "--json", check=True).stdout,
            server.cli("ls", "--json", check=True).stdout,
            refused.stdout,
            *(server.cli("outcomes", t["id"], "--json", check=True).stdout for t in (there, back)),
            server.cli("outcomes", json.loads(refused.stdout)["id"], "--json", check=True).stdout,
            server.api("GET", "/api/v1/storages/davwrong").text,
            server.log.read_text(),
            *(log.read_text() for log in server.cwd.parent.glob("*.log")),
        ]
        wrong = json.loads(shown[3])
        assert wrong["status"] == "FAILED"
        assert wrong["error"] or wrong["objects"]["failed"]  # it says why, without the secret
        for text in shown:
            assert PASSWORD not in text
            assert WRONG not in text
