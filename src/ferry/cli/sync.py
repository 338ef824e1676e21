"""Sync options of ``ferry submit`` (``--sync``, ``--delete-extra``, ``--max-delete``,
``--dry-run``), the plans a dry run prints, and ``ferry plan ID``: what a transfer's next run
would do now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    TransferIdArgument,
    UrlOption,
    plain_client,
    print_json,
)
from ferry.domain.sync import DEFAULT_MAX_DELETE, SyncLevel
from ferry.errors import InvalidRequest

SyncOption = Annotated[
    SyncLevel | None,
    typer.Option(
        "--sync",
        help="Which existing destination files are replaced (Globus's sync levels): exists"
        " (none: copy only what DEST lacks), size (also those of another size), mtime (also"
        " those older than the source), checksum (also those whose checksum differs)."
        " Stands instead of --overwrite, which may then only be never (the default) or"
        " if-different with checksum.",
        show_default=False,
    ),
]
DeleteExtraOption = Annotated[
    bool,
    typer.Option(
        "--delete-extra",
        help="With --tree: once every copy of a run succeeded, delete the files of DEST that"
        " the source does not have (what the filters leave out is kept). Nothing is deleted"
        " when a copy failed; each deleted file is an object of the run, DELETED.",
    ),
]
MaxDeleteOption = Annotated[
    int | None,
    typer.Option(
        "--max-delete",
        min=0,
        help=f"With --delete-extra: a run with more files to delete than this (default"
        f" {DEFAULT_MAX_DELETE}) deletes none and says why.",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Submit nothing, move nothing: print what a run would do now (for a periodic"
        " transfer, its next run): each object copied, skipped (and why), failed or deleted,"
        " with counts and bytes.",
    ),
]


def sync_options(
    sync: SyncLevel | None, delete_extra: bool, max_delete: int | None
) -> dict[str, Any]:
    """The API's options for these flags, only those given (a server of the previous release
    refuses options it does not know)."""
    options: dict[str, Any] = {}
    if sync is not None:
        options["sync"] = sync.value
    if delete_extra:
        options["delete_extra"] = True
    if max_delete is not None:
        if not delete_extra:
            raise InvalidRequest("--max-delete applies only with --delete-extra")
        options["max_delete"] = max_delete
    return options


_VERBS = {"copy": "copy", "skip": "skip", "fail": "fail", "delete": "delete"}


def print_plan(plan: dict[str, Any]) -> None:
    """A plan as the API gives it (``PlanPublic``), one line per entry, then the totals."""
    lines = []
    for entry in plan["entries"]:
        size = f" ({entry['size']} bytes)" if entry.get("size") else ""
        where = entry["destination"] if entry["action"] == "delete" else entry["source"]
        lines.append(f"{_VERBS[entry['action']]:<6}  {where}{size}: {entry['reason']}")
    if plan.get("truncated"):
        lines.append("… more entries than listed: the totals count them all")
    counts, sizes = plan["counts"], plan["bytes"]
    totals = ", ".join(
        f"{counts.get(action, 0)} to {action} ({sizes.get(action, 0)} bytes)"
        for action in ("copy", "skip", "fail", "delete")
    )
    lines.append(f"plan: {totals}")
    if plan.get("filtered"):
        lines.append(f"filtered out: {plan['filtered']} entries of the tree")
    if plan.get("deletion"):
        lines.append(plan["deletion"])
    lines.append("dry run: nothing was submitted or moved")
    typer.echo("\n".join(lines))


def plan(
    transfer_id: TransferIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """What the transfer's next run would do if it began now (a dry run: nothing moves)."""
    with plain_client(url, token, data_dir) as client:
        found = client.next_plan(transfer_id)
    print_json(found) if as_json else print_plan(found)


def register(app: typer.Typer) -> None:
    app.command()(plan)
