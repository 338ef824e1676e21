"""Shell completion as a person gets it: the script ``ferry completion bash`` prints, loaded
into a real bash, asked as bash asks when TAB is pressed, against a real server for storage
names, paths and transfer ids; zsh's and fish's scripts and answers; and no server, no wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import FERRY, ServerProcess, free_port

BIN = str(Path(sys.executable).parent)  # where the ``ferry`` the scripts call is


def tab(server_env: dict[str, str], cwd: Path, line: str) -> list[str]:
    """What bash offers for ``line`` with the cursor at its end (COMPREPLY)."""
    words = line.split(" ")
    script = (
        "source <(ferry completion bash)\n"
        f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_ferry_completion ferry; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**server_env, "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "--norc", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [reply for reply in done.stdout.splitlines() if reply]


def test_bash_completes_commands_and_options(module_server: ServerProcess) -> None:
    assert tab(module_server.env(), module_server.cwd, "ferry sub") == ["submit"]
    assert "--tree" in tab(module_server.env(), module_server.cwd, "ferry submit --tr")
    assert tab(module_server.env(), module_server.cwd, "ferry comp") == ["completion"]


def test_bash_completes_storage_names_then_paths(module_server: ServerProcess) -> None:
    (module_server.cwd / "data" / "deep").mkdir(parents=True)
    (module_server.cwd / "data" / "a.csv").write_text("a")
    env, cwd = module_server.env(), module_server.cwd
    assert tab(env, cwd, "ferry submit lo") == ["local:"]
    # bash cut the word at the colon: it is offered what comes after it
    assert tab(env, cwd, "ferry submit local:da") == ["data/"]
    assert tab(env, cwd, "ferry ls local:data/") == ["data/a.csv", "data/deep/"]
    assert tab(env, cwd, "ferry submit local:data/a") == ["data/a.csv"]


def test_bash_completes_transfer_ids(module_server: ServerProcess) -> None:
    (module_server.cwd / "later.txt").write_text("later")
    submitted = module_server.cli_json("submit", "--at", "+1h", "local:later.txt", "local:o")
    offered = tab(module_server.env(), module_server.cwd, f"ferry status {submitted['id'][:4]}")
    assert submitted["id"] in offered


@pytest.mark.parametrize(
    ("shell", "marks", "answer"),
    [
        ("zsh", "#compdef ferry", '(("local\\\\:"))'),  # zsh's colon is escaped, twice
        ("fish", "complete --command ferry", "local:"),
    ],
)
def test_zsh_and_fish_scripts_and_answers(
    module_server: ServerProcess, shell: str, marks: str, answer: str
) -> None:
    script = module_server.cli("completion", shell, check=True).stdout
    assert marks in script
    assert "_FERRY_COMPLETE=complete_" + shell in script
    asked = {**module_server.env(), "_FERRY_COMPLETE": f"complete_{shell}"}
    asked |= {"_TYPER_COMPLETE_ARGS": "ferry submit lo", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    done = subprocess.run(
        FERRY, cwd=module_server.cwd, env=asked, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert answer in done.stdout, done.stdout


def test_no_server_completes_no_storage_and_does_not_wait(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env["FERRY_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    assert tab(env, tmp_path, "ferry submit lo") == []
    assert time.monotonic() - started < 30  # not the 30 s of a client's default timeout
    assert tab(env, tmp_path, "ferry sub") == ["submit"]
