"""Requests generated from the OpenAPI document against a live server (issue 19, acceptance 2):
every check schemathesis has, a few thousand requests, and not one failure."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import ServerProcess, launch, shutdown

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# A number of cases per operation, not a time budget: a budget generates fewer cases on a loaded
# machine, and the floor below then failed for no fault of the server.
EXAMPLES_PER_OPERATION = 20
MIN_CASES = 4000
TIMEOUT_S = 900


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    # No local agents: the transfers it submits wait, none copies anything.
    server = launch(tmp_path / "work", "--agents", "0")
    yield server
    shutdown(server)


def test_generated_requests_find_no_failure(server: ServerProcess, tmp_path: Path) -> None:
    command = [str(SCHEMATHESIS), "--no-color", "--config-file", str(CONFIG), "run"]
    command += [f"{server.url}/api/v1/openapi.json", "--checks", "all"]
    command += ["--header", f"Authorization: Bearer {server.token}"]
    # One worker: hypothesis describes its strategies with ast.parse, which is not safe in
    # several threads on Python 3.11 (a SystemError in a run with two).
    command += ["--workers", "1", "--max-examples", str(EXAMPLES_PER_OPERATION)]
    command += ["--request-timeout", "20"]
    command += ["--seed", "1"]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=server.env(),
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None, summary
    assert int(generated.group(1)) >= MIN_CASES, summary
    assert " crashed" not in server.log.read_text()
