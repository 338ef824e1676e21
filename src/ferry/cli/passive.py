"""``ferry push`` and ``ferry pull``: transfers with this machine as one end, streamed through
the server with a one-time capability, verified by checksum, recorded like any transfer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    UrlOption,
    console,
    print_json,
    typed_client,
)
from ferry.domain.options import Checksum, Overwrite

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ferry.api.schemas import PassiveCreated, TransferPublic

OverwriteOption = Annotated[
    Overwrite, typer.Option("--overwrite", help="When the destination exists.")
]
ChecksumOption = Annotated[
    Checksum, typer.Option("--checksum", help="Checksum computed and verified.")
]


def push(
    locations: Annotated[
        list[str], typer.Argument(help="LOCAL_PATH... STORAGE:DEST.", show_default=False)
    ],
    tree: Annotated[bool, typer.Option("--tree", help="Send folders' contents.")] = False,
    overwrite: OverwriteOption = Overwrite.NEVER,
    checksum: ChecksumOption = Checksum.ADLER32,
    scope: Annotated[str | None, typer.Option(help="The scope it belongs to.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Send local files into a storage folder; exit 1 unless every object arrived (run it
    again after an interruption: what arrived is kept, the rest is sent)."""
    if len(locations) < 2:
        raise typer.BadParameter("give at least one LOCAL_PATH and a STORAGE:DEST")
    options = {"overwrite": overwrite.value, "checksum": checksum.value}
    with typed_client(url, token, data_dir) as client, _bar(as_json) as bar:
        task = bar.add_task("push", total=None, objects="")
        count = ObjectCount(bar, task)
        transfer = client.push(
            [Path(p) for p in locations[:-1]],
            locations[-1],
            tree=tree,
            options=options,
            scope=scope,
            progress=lambda n: bar.advance(task, n),
            started=count.started,
            ended=count.ended,
        )
    _verdict(transfer, as_json)


def pull(
    locations: Annotated[
        list[str], typer.Argument(help="STORAGE:PATH... LOCAL_DIR.", show_default=False)
    ],
    overwrite: OverwriteOption = Overwrite.NEVER,
    checksum: ChecksumOption = Checksum.ADLER32,
    scope: Annotated[str | None, typer.Option(help="The scope it belongs to.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Fetch files (a folder: its contents) into a local folder; exit 1 unless every object
    arrived."""
    if len(locations) < 2:
        raise typer.BadParameter("give at least one STORAGE:PATH and a LOCAL_DIR")
    options = {"overwrite": overwrite.value, "checksum": checksum.value}
    folder = Path(locations[-1])
    folder.mkdir(parents=True, exist_ok=True)
    with typed_client(url, token, data_dir) as client, _bar(as_json) as bar:
        task = bar.add_task("pull", total=None, objects="")
        count = ObjectCount(bar, task)
        transfer = client.pull(
            locations[:-1],
            folder,
            options=options,
            scope=scope,
            progress=lambda n: bar.advance(task, n),
            started=count.started,
            ended=count.ended,
        )
    _verdict(transfer, as_json)


class ObjectCount:
    """The bar's objects ended of the total, and its bytes' total."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar, self._task = bar, task
        self._ended, self._total = 0, 0

    def started(self, created: PassiveCreated) -> None:
        self._total = len(created.objects)
        self._bar.update(self._task, total=_total(created), objects=self._shown())

    def ended(self, _name: str) -> None:
        self._ended += 1
        self._bar.update(self._task, objects=self._shown())

    def _shown(self) -> str:
        return f"{self._ended}/{self._total} objects"


def _bar(quiet: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.fields[objects]}",
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console(),
        disable=quiet or not console().is_terminal,
    )


def _total(created: PassiveCreated) -> int:
    return sum(o.size or 0 for o in created.objects)


def _verdict(transfer: TransferPublic, as_json: bool) -> None:
    if as_json:
        print_json(transfer)
    else:
        o = transfer.objects
        console().print(
            f"{transfer.id}: {transfer.status} ({o.done} moved, {o.skipped} already there,"
            f" {o.failed} failed; {transfer.bytes} bytes)"
        )
        if transfer.error:
            console().print(f"  error: {transfer.error}", markup=False)
    if transfer.status != "COMPLETED":
        raise SystemExit(1)


def register(app: typer.Typer) -> None:
    app.command()(push)
    app.command()(pull)
