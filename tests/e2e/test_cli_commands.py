"""Every transfer command as a user runs it: human output and --json, against a real server."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def finished(module_server):
    (module_server.cwd / "in").mkdir()
    (module_server.cwd / "in" / "a.txt").write_text("alpha")
    (module_server.cwd / "in" / "b.txt").write_text("beta")
    return module_server.cli_json(
        "submit", "--wait", "local:in/a.txt", "local:in/b.txt", "local:out"
    )


def test_submit_wait_json_is_the_final_state(module_server, finished) -> None:
    for key in ("id", "status", "kind", "schedule", "created_at", "runs", "objects", "bytes"):
        assert key in finished
    assert finished["status"] == "COMPLETED"
    assert finished["objects"] == {
        "total": 2,
        "done": 2,
        "failed": 0,
        "skipped": 0,
        "canceled": 0,
        "filtered": 0,
    }
    assert finished["bytes"] == 9
    assert (module_server.cwd / "out" / "a.txt").read_text() == "alpha"


def test_status_human_and_json(module_server, finished) -> None:
    human = module_server.cli("status", finished["id"], check=True).stdout
    assert finished["id"] in human
    assert "COMPLETED" in human
    assert "2 done" in human
    assert module_server.cli_json("status", finished["id"]) == finished


def test_ls_lists_the_transfer(module_server, finished) -> None:
    listed = module_server.cli_json("ls")
    assert finished["id"] in [t["id"] for t in listed]
    table = module_server.cli("ls", check=True).stdout
    assert "COMPLETED" in table
    assert finished["id"][:8] in table
    assert finished["id"] not in table  # tables show 8 characters: enough to name it


def test_ls_search_finds_by_part_of_a_path(module_server, finished) -> None:
    found = module_server.cli_json("ls", "--search", "in/b.t")
    assert finished["id"] in [t["id"] for t in found]
    assert module_server.cli_json("ls", "--search", "no-such-path") == []
    assert module_server.cli_json("ls", "--search", finished["id"][:8])[0]["id"] == finished["id"]


def test_a_short_id_stands_for_the_transfer(module_server, finished) -> None:
    short = finished["id"][:8]
    assert module_server.cli_json("status", short) == finished
    assert module_server.cli_json("outcomes", short)["transfer"] == finished["id"]
    assert module_server.cli_json("runs", short)[0]["number"] == 1
    assert "COMPLETED" in module_server.cli("watch", finished["id"][:6], check=True).stdout
    unknown = module_server.cli("status", "0000000")
    assert unknown.returncode == 1
    assert "transfer 0000000 not found" in unknown.stderr


def test_outcomes_human_and_json(module_server, finished) -> None:
    outcomes = module_server.cli_json("outcomes", finished["id"])
    assert outcomes["run"] == 1
    assert [o["source"] for o in outcomes["objects"]] == ["local:in/a.txt", "local:in/b.txt"]
    assert [o["destination"] for o in outcomes["objects"]] == ["local:out/a.txt", "local:out/b.txt"]
    human = module_server.cli("outcomes", finished["id"], check=True).stdout
    assert "local:in/a.txt" in human
    assert "DONE" in human


def test_resubmission_skips_what_is_there(module_server, finished) -> None:
    again = module_server.cli_json("submit", "--wait", "local:in/a.txt", "local:out")
    assert again["status"] == "COMPLETED"
    assert again["objects"]["skipped"] == 1
    (obj,) = module_server.cli_json("outcomes", again["id"])["objects"]
    assert obj["status"] == "SKIPPED"


def test_cancel_of_a_finished_transfer_is_refused(module_server, finished) -> None:
    result = module_server.cli("cancel", finished["id"])
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: transfer {finished['id']} already finished (COMPLETED)"


def test_rerun_submits_the_spec_again_to_run_now(module_server, finished) -> None:
    again = module_server.cli_json("rerun", finished["id"][:8])
    assert again["id"] != finished["id"]
    assert (again["sources"], again["destination"]) == (finished["sources"], "local:out")
    assert again["schedule"]["kind"] == "direct"
    human = module_server.cli("rerun", finished["id"], check=True).stdout
    assert "from local:in/a.txt, local:in/b.txt  to local:out" in human
    watched = module_server.cli_json("status", again["id"])
    assert watched["id"] == again["id"]


def test_submission_id_from_the_cli(module_server, finished) -> None:
    args = ["submit", "--submission-id", "cli-1", "local:in/b.txt", "local:out2", "--json"]
    first = json.loads(module_server.cli(*args, check=True).stdout)
    second = json.loads(module_server.cli(*args, check=True).stdout)
    assert first["id"] == second["id"]


def test_unzip_and_bandwidth_reach_the_agent(module_server) -> None:
    import zipfile

    with zipfile.ZipFile(module_server.cwd / "bundle.zip", "w") as bundle:
        bundle.writestr("inner/a.txt", "alpha")
        bundle.writestr("b.txt", "beta")
    args = [
        "submit",
        "--wait",
        "--unzip",
        "--bandwidth",
        "1M",
        "local:bundle.zip",
        "local:unpacked",
    ]
    transfer = module_server.cli_json(*args)
    assert transfer["status"] == "COMPLETED"
    assert transfer["options"]["unzip"] is True
    assert transfer["options"]["bandwidth"] == 1024 * 1024
    assert (module_server.cwd / "unpacked" / "inner" / "a.txt").read_text() == "alpha"
    assert (module_server.cwd / "unpacked" / "b.txt").read_text() == "beta"
    assert not (module_server.cwd / "unpacked" / "bundle.zip").exists()


def test_a_bad_rate_is_one_line(module_server) -> None:
    result = module_server.cli("submit", "--bandwidth", "fast", "local:in/a.txt", "local:x")
    assert result.returncode == 1
    assert result.stderr.startswith("error: 'fast' is not a rate")


def test_every_command_the_readme_lists_with_json_takes_it(module_server) -> None:
    scope = module_server.cli_json("scope", "set", "json-team", "--weight", "2")
    assert scope == {"name": "json-team", "weight": 2}
    module_server.cli("channel", "set", "json-a", "json-b", "--max-active", "2", check=True)
    removed = module_server.cli_json("channel", "rm", "json-a", "json-b")
    assert removed == {"source_site": "json-a", "destination_site": "json-b", "removed": True}
    module_server.cli("storage", "add", "json-store", module_server.cwd.as_uri(), check=True)
    assert module_server.cli_json("storage", "rm", "json-store") == {
        "name": "json-store",
        "removed": True,
    }


def test_outcomes_filter_by_status_and_limit(module_server, finished) -> None:
    mixed = module_server.cli(
        "submit", "--wait", "local:in/a.txt", "local:in/b.txt", "local:in/gone.txt", "local:o2"
    )
    transfer_id = mixed.stdout.split()[0]
    assert "COMPLETED_WITH_ERRORS" in mixed.stdout

    failed = module_server.cli_json("outcomes", transfer_id, "--status", "FAILED")
    assert [o["source"] for o in failed["objects"]] == ["local:in/gone.txt"]
    assert failed["next_cursor"] is None
    first = module_server.cli_json("outcomes", transfer_id, "--status", "DONE", "--limit", "1")
    assert [o["source"] for o in first["objects"]] == ["local:in/a.txt"]
    assert first["next_cursor"] is not None  # where the rest starts
    human = module_server.cli("outcomes", transfer_id, "--status", "FAILED", check=True).stdout
    assert "gone.txt" in human
    assert "b.txt" not in human
    refused = module_server.cli("outcomes", transfer_id, "--status", "LOST")
    assert refused.returncode == 2  # not a state: refused before asking the server
