"""The progress bar of the commands that wait for a transfer (``submit --wait``, ``watch``):
objects and bytes done of the total, the rate and the time left (the server's figures),
redrawn at each ``progress`` event (every second while a run moves). Only on a terminal:
piped or with ``--json``, the output is what it was without it, and rich is not even loaded
(``submit --wait`` into a pipe is what scripts and benchmarks time)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ferry.cli.common import console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ferry.client.plain import PlainClient


class TransferBar:
    """Feed it the transfer's events (``wait(on_event=bar.show)``); the object counts are
    read from the server at each progress event, the bytes come with the event."""

    def __init__(self, client: PlainClient, transfer_id: str, *, quiet: bool) -> None:
        self._client = client
        self._transfer_id = transfer_id
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._console: Console | None = None
        if not quiet and sys.stdout.isatty():
            self._progress = _progress()
            self._task = self._progress.add_task(
                transfer_id[:8], total=None, objects="", rate="", eta=""
            )

    @property
    def console(self) -> Console:
        """Where to print while the bar shows: above it."""
        if self._progress is not None:
            return self._progress.console
        if self._console is None:
            self._console = console()
        return self._console

    def __enter__(self) -> TransferBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def show(self, event: dict[str, Any]) -> None:
        if event["event"] != "progress" or self._progress is None or self._task is None:
            return
        o = self._client.get(self._transfer_id)["objects"]
        ended = o["done"] + o["skipped"] + o["failed"] + o["canceled"]
        rate, eta = event.get("rate_bps"), event.get("eta_s")
        self._progress.update(
            self._task,
            completed=event["bytes_moved"],
            total=event.get("bytes_total"),
            objects=f"{ended}/{o['total']} objects",
            rate=f"{rate / 1e6:.1f} MB/s" if rate else "",
            eta=f"about {eta:.0f} s left" if eta else "",
        )


def _progress() -> Progress:
    from rich.progress import BarColumn, DownloadColumn, Progress

    out = console()
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.fields[objects]}",
        DownloadColumn(),
        "{task.fields[rate]}",
        "{task.fields[eta]}",
        console=out,
        transient=True,
        disable=not out.is_terminal,
    )
