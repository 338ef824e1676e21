"""``ferry storage`` against a real server: a storage added with a credential moves data, and
the credential shows up in no answer and no log line."""

from __future__ import annotations

SECRET = "pa55-never-printed"


def test_a_storage_added_from_the_cli_works_and_keeps_its_secret(start_server, tmp_path) -> None:
    server = start_server()
    archive = tmp_path / "archive"
    (archive / "in").mkdir(parents=True)
    (archive / "in" / "report.csv").write_text("a,b\n")

    added = server.cli(
        "storage",
        "add",
        "archive",
        archive.as_uri(),
        "--option",
        "auto_mkdir=true",
        "--credential",
        f"password={SECRET}",
        check=True,
    )
    assert added.stdout.rstrip().endswith(": ok")
    listed = server.cli_json("storage", "ls")
    (entry,) = [s for s in listed if s["name"] == "archive"]
    assert entry["credentials"] == ["password"]
    assert entry["options"] == {"auto_mkdir": True}
    assert entry["health"]["reachable"] is True

    transfer = server.cli_json("submit", "--wait", "archive:in/report.csv", "local:inbox")
    assert transfer["status"] == "COMPLETED"
    assert (server.cwd / "inbox" / "report.csv").read_text() == "a,b\n"

    answers = [server.api("GET", p).text for p in ("/api/v1/storages", "/api/v1/agents")]
    answers.append(server.cli("outcomes", transfer["id"], "--json", check=True).stdout)
    assert not any(SECRET in text for text in answers)
    assert SECRET not in server.log.read_text()

    refused = server.cli("storage", "rm", "nowhere")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: storage 'nowhere' is not registered"
    assert (
        server.cli("storage", "rm", "archive", check=True).stdout.strip()
        == "storage archive removed"
    )
