"""--sync, --delete-extra and --dry-run with an object store as the destination (moto's S3
server): sizes decide, a deleted object goes, an empty folder is SKIPPED where folders are
only prefixes, and the dry run listed each of those as the run then did it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ServerProcess, launch, shutdown
from storage_servers import StorageServer, s3_server
from sync_support import as_done, as_recorded, outcomes

PROBE = Path(__file__).with_name("storage_probe.py")
SOURCE = {"same.bin": b"s" * 100, "resized.bin": b"r" * 100, "new.bin": b"n" * 100}
HELD = {"same.bin": b"s" * 100, "resized.bin": b"r" * 7, "extra.bin": b"x" * 9}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("sync-s3")
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_server(base / "s3"))
        ferry = launch(base / "ferry")
        stack.callback(shutdown, ferry)
        response = ferry.api("POST", "/api/v1/storages", json=s3.registration("s3"))
        assert response.status_code == 201, response.text
        for name, data in SOURCE.items():
            (ferry.cwd / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            (ferry.cwd / "src" / name).write_bytes(data)
        (ferry.cwd / "src" / "hollow").mkdir()  # an empty folder
        yield {"ferry": ferry, "s3": s3}


def probe(s3: StorageServer, action: str, folder: str, given: str = "") -> str:
    command = [sys.executable, str(PROBE), action, s3.url, json.dumps(s3.fsspec_kwargs()), folder]
    done = subprocess.run(command, input=given, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_size_sync_with_deletions_on_s3_does_what_its_dry_run_said(
    world: dict[str, Any],
) -> None:
    ferry: ServerProcess = world["ferry"]
    s3: StorageServer = world["s3"]
    probe(s3, "write", "mirror", json.dumps({n: d.hex() for n, d in HELD.items()}))
    args = ("--tree", "--sync", "size", "--delete-extra", "local:src", "s3:mirror")

    plan = json.loads(ferry.cli("submit", "--dry-run", "--json", *args, check=True).stdout)
    result = ferry.cli("submit", "--wait", "--json", *args)
    transfer = json.loads(result.stdout)

    assert transfer["status"] == "COMPLETED", transfer
    assert plan["counts"] == {"copy": 2, "skip": 2, "fail": 0, "delete": 1}
    assert as_recorded(outcomes(ferry, transfer["id"])) == as_done(plan)
    reasons = {e["source"]: e["reason"] for e in plan["entries"] if e["action"] == "skip"}
    assert reasons == {
        "local:src/same.bin": "the destination has the same size (sync: size)",
        "local:src/hollow": "the destination keeps no empty folders (an object store): none made",
    }
    found = json.loads(probe(s3, "read", "mirror"))
    assert found == {name: hashlib.sha256(data).hexdigest() for name, data in SOURCE.items()}
