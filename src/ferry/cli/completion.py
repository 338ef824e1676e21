"""Shell completion: ``ferry completion bash|zsh|fish`` prints the script a shell loads, and the
shell then runs ``ferry`` with ``_FERRY_COMPLETE`` set to ask for the words that may come next:
commands and options (from the commands' own definitions), storage names and paths (``STORAGE:``
then what the server lists there, as ``ferry ls``), and transfer ids (the newest 100).

What comes from the server is asked with a short timeout, as the command line's settings reach
it (``FERRY_URL``, the token); a server that does not answer completes nothing rather than
holding the shell.

Bash splits words at ":" (``COMP_WORDBREAKS``), which would cut ``archive:run-42`` in two: its
script here sends the line up to the cursor instead of the words, and the answers to a word
with a colon leave out what bash kept before the colon."""

from __future__ import annotations

import os
import posixpath
import shlex
from enum import StrEnum
from typing import Annotated, Any

import typer

from ferry.cli.main import COMPLETE_VAR

ASK_TIMEOUT_S = 2.0

BASH_SCRIPT = r"""
_ferry_completion() {
    local IFS=$'\n'
    COMPREPLY=( $( env COMP_LINE="${COMP_LINE:0:$COMP_POINT}" _FERRY_COMPLETE=complete_bash "$1" ) )
    local reply
    for reply in "${COMPREPLY[@]}"; do
        case "$reply" in *: | */) compopt -o nospace 2>/dev/null; break ;; esac
    done
    return 0
}
complete -o default -F _ferry_completion ferry
"""


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
) -> None:
    """Print the completion script for SHELL. Bash: eval "$(ferry completion bash)" in
    ~/.bashrc; zsh: ferry completion zsh > "${fpath[1]}/_ferry"; fish: ferry completion fish >
    ~/.config/fish/completions/ferry.fish."""
    if shell is Shell.BASH:
        typer.echo(BASH_SCRIPT.strip())
        return
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name="ferry", complete_var=COMPLETE_VAR, shell=shell))


def prepare() -> None:
    """Register the shells' answers (only when a shell asks: it costs an import)."""
    from typer._click.shell_completion import add_completion_class
    from typer._completion_classes import BashComplete, completion_init

    class LineComplete(BashComplete):
        """Bash, from the line up to the cursor (``COMP_LINE``) rather than bash's words."""

        def get_completion_args(self) -> tuple[list[str], str]:
            line = os.environ.get("COMP_LINE", "")
            try:
                words = shlex.split(line)
            except ValueError:  # an open quote: complete the last word as it stands
                words = line.split()
            if line and not line[-1].isspace() and words:
                return words[1:-1], words[-1]
            return words[1:], ""

        def format_completion(self, item: Any) -> str:
            _args, incomplete = self.get_completion_args()
            kept = incomplete.rpartition(":")[0] + ":" if ":" in incomplete else ""
            return str(item.value).removeprefix(kept)

    completion_init()
    add_completion_class(LineComplete, Shell.BASH.value)


def locations(incomplete: str) -> list[str]:
    """``STORAGE:`` for the storages whose name starts the word; past the colon, the entries
    of the folder the path is in, folders ending in ``/``."""
    try:
        from ferry.client.plain import PlainClient

        with PlainClient(timeout=ASK_TIMEOUT_S) as client:
            if ":" not in incomplete:
                names = [s["name"] for s in client.listing("storages")]
                return sorted(f"{n}:" for n in names if n.startswith(incomplete))
            storage, _, path = incomplete.partition(":")
            folder = posixpath.dirname(path)
            page = client.entries(storage, folder, scope=_scope(), limit=1000)
    except Exception:  # no server, no token, nothing there: nothing to offer
        return []
    prefix = f"{storage}:{folder}/" if folder else f"{storage}:"
    found = [prefix + e["name"] + ("/" if e["folder"] else "") for e in page["entries"]]
    return [f for f in found if f.startswith(incomplete)]


def transfer_ids(incomplete: str) -> list[tuple[str, str]]:
    """The newest transfers whose id starts the word, each with its status and kind."""
    try:
        from ferry.client.plain import PlainClient

        with PlainClient(timeout=ASK_TIMEOUT_S) as client:
            items = client.list(limit=100)["items"]
    except Exception:
        return []
    return [
        (t["id"], f"{t['status']} {t['kind']}") for t in items if t["id"].startswith(incomplete)
    ]


def _scope() -> str:
    return os.environ.get("FERRY_SCOPE", "default")


def register(app: typer.Typer) -> None:
    app.command()(completion)
