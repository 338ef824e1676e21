"""Endpoints outside the registry (a URL instead of STORAGE:PATH): refused unless an
administrator allows their host; then they run like any storage, as site UNKNOWN, governed by
the catch-all channel."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from e2e_support import ServerProcess
from storage_servers import http_server


def test_an_allowed_http_endpoint_is_copied_and_counted_as_site_unknown(
    start_server, tmp_path: Path
) -> None:
    with http_server(tmp_path / "http") as (http, www):
        payload = os.urandom(3 * 1024 * 1024)
        (www / "pub").mkdir()
        (www / "pub" / "data set.bin").write_bytes(payload)
        server: ServerProcess = start_server("--allow-unregistered", "127.0.0.1")
        server.cli("channel", "set", "*", "*", "--max-active", "4", check=True)
        source = http.url.rstrip("/") + "/pub/data%20set.bin"

        done = server.cli_json("submit", "--wait", source, "local:in")

        assert done["status"] == "COMPLETED", done
        assert done["sources"] == [source.replace("%20", " ")]  # names, not URL encoding
        assert (server.cwd / "in" / "data set.bin").read_bytes() == payload
        with sqlite3.connect(f"file:{server.cwd / '.ferry' / 'ferry.db'}?mode=ro", uri=True) as db:
            sites = db.execute("SELECT source_site, destination_site FROM tasks").fetchall()
        assert sites == [("UNKNOWN", "local")]


def test_an_endpoint_is_refused_unless_its_host_is_allowed(start_server) -> None:
    server: ServerProcess = start_server("--allow-unregistered", "*.example.org")

    refused = server.cli("submit", "https://data.example.com/a.bin", "local:in")
    local_file = server.cli("submit", "file:///etc/passwd", "local:in")
    with_user = server.cli("submit", "https://me@mirror.example.org/a.bin", "local:in")

    assert refused.returncode == 1
    assert "unregistered endpoints on 'data.example.com' are not allowed" in refused.stderr
    assert local_file.returncode == 1
    assert "never as file URLs" in local_file.stderr
    assert with_user.returncode == 1
    assert "no user, query or fragment" in with_user.stderr
    assert server.cli_json("ls") == []
