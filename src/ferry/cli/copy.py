"""``ferry copy``: a transfer done here and now, with no server (``agent.standalone``).

Storages by name: ``local`` is the current directory, others come from ``--storage
NAME=URL`` or a ``--config`` file (``_configured``; the ``--storage`` options win). Prints a
summary, or every object's end with ``--json``; exits 0 when every object was copied or
skipped, 1 with the objects that failed listed."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from ferry.cli.common import complete_location
from ferry.cli.filters import (
    ExcludeOption,
    FilterOption,
    IncludeOption,
    MaxAgeOption,
    MaxSizeOption,
    MinAgeOption,
    MinSizeOption,
    SkipSourceErrorsOption,
    TreeFilterOptions,
)
from ferry.domain.filters import TreeFilter
from ferry.domain.locations import parse_location
from ferry.domain.options import Checksum, Overwrite, parse_rate
from ferry.domain.transfers import TransferKind, TransferOptions
from ferry.errors import InvalidRequest


def copy(
    locations: Annotated[
        list[str],
        typer.Argument(
            help="SOURCE... DEST, each STORAGE:PATH.",
            show_default=False,
            autocompletion=complete_location,
        ),
    ],
    tree: Annotated[
        bool, typer.Option("--tree", help="Copy the contents of a folder recursively.")
    ] = False,
    storage: Annotated[
        list[str] | None,
        typer.Option(
            "--storage",
            help="NAME=URL: a storage the locations may name (repeatable); local is the"
            " current directory unless given.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file: [server] storages (NAME = URL) and [storages.NAME] tables (url,"
            " options).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        Overwrite, typer.Option("--overwrite", help="When the destination exists.")
    ] = Overwrite.NEVER,
    checksum: Annotated[
        Checksum, typer.Option("--checksum", help="Checksum computed and verified.")
    ] = Checksum.ADLER32,
    verify_source: Annotated[
        bool,
        typer.Option("--verify-source", help="Read each source a second time (as submit)."),
    ] = False,
    retries: Annotated[
        int, typer.Option("--retries", min=0, max=100, help="Retries of a retryable failure.")
    ] = 3,
    transfers: Annotated[
        int, typer.Option("--transfers", min=1, max=256, help="Objects copied at once.")
    ] = 4,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=0,
            max=256,
            help="Processes copying the small files of a tree between local disks (0: none,"
            " the threads copy them). Default: one per --transfers, up to two per CPU.",
            show_default=False,
        ),
    ] = None,
    bandwidth: Annotated[
        str | None,
        typer.Option("--bandwidth", help="Each object's rate cap: 500K, 10M.", show_default=False),
    ] = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    filter_rule: FilterOption = None,
    min_size: MinSizeOption = None,
    max_size: MaxSizeOption = None,
    min_age: MinAgeOption = None,
    max_age: MaxAgeOption = None,
    skip_source_errors: SkipSourceErrorsOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Every object's end, as JSON.")] = False,
) -> None:
    """Copy each SOURCE into the folder DEST (--tree: a folder's contents) here and now, with
    no server: the same checks, temporary names and rules as a transfer's."""
    from ferry.agent.standalone import StandaloneCopy

    if len(locations) < 2:
        raise InvalidRequest("give at least one SOURCE and a DEST")
    chosen = TreeFilterOptions(
        include, exclude, filter_rule, min_size, max_size, min_age, max_age
    ).body()
    if chosen is not None and not tree:
        raise InvalidRequest("filters apply to tree copies only: add --tree")
    if verify_source and checksum is Checksum.NONE:
        raise InvalidRequest("--verify-source compares checksums: give a checksum, not none")
    options = TransferOptions(
        checksum=checksum,
        overwrite=overwrite,
        retries=retries,
        bandwidth=parse_rate(bandwidth) if bandwidth else None,
        filters=TreeFilter.from_json(chosen) if chosen else None,
        skip_source_errors=skip_source_errors,
        verify_source=verify_source,
    )
    places = [parse_location(text) for text in locations]
    storages = _open_storages(storage or [], config)
    bar = _Bar(quiet=as_json)
    job = StandaloneCopy(
        storages,
        options,
        workers=transfers,
        on_ended=bar.ended,
        progress=bar.moved,
        processes=processes,
    )
    with bar, _StoppedBySignals(job):
        report = job.run(places[:-1], places[-1], tree=tree)
    if as_json:
        from ferry.cli.common import print_json

        print_json(report.to_json())
    else:
        _summary(report)
    if report.failed:
        raise SystemExit(1)


def copy_request(text: str, config: Path | None) -> None:
    """``ferry agent --stdin``: one transfer request (the API's body, as JSON) done here and
    now; its report, as ``ferry copy --json`` writes it, on standard output; exit 1 when an
    object failed. Storages: ``local`` and those of the ``--config`` file."""
    from pydantic import ValidationError

    from ferry.agent.standalone import StandaloneCopy
    from ferry.api.schemas import TransferCreate
    from ferry.cli.common import print_json
    from ferry.domain.schedules import ScheduleKind

    try:
        body = TransferCreate.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequest(f"the request on standard input: {where}: {first['msg']}") from None
    if body.schedule.kind is not ScheduleKind.DIRECT:
        raise InvalidRequest("a request on standard input is done now: give it no schedule")
    options = TransferOptions.from_json(body.options.model_dump(mode="json"))
    if any(not isinstance(source, str) for source in body.sources):
        raise InvalidRequest("a request on standard input takes no replicas: one place a source")
    places = [parse_location(str(text)) for text in (*body.sources, body.destination)]
    job = StandaloneCopy(_open_storages([], config), options)
    with _StoppedBySignals(job):
        report = job.run(places[:-1], places[-1], tree=body.kind is TransferKind.TREE)
    print_json(report.to_json())
    if report.failed:
        raise SystemExit(1)


def _open_storages(given: list[str], config: Path | None) -> dict[str, Any]:
    from ferry.cli.daemons import parse_storages
    from ferry.engine.storages import open_storage

    chosen: dict[str, tuple[str, dict[str, Any]]] = {"local": (Path.cwd().as_uri(), {})}
    if config is not None:
        chosen |= _configured(config)
    chosen |= {name: (url, {}) for name, url in parse_storages(given).items()}
    storages = {}
    for name, (url, options) in chosen.items():
        try:
            storages[name] = open_storage(name, url, options)
        except Exception as exc:  # an unknown protocol, a missing backend, a bad URL
            raise InvalidRequest(f"storage {name!r} ({url}) cannot be opened: {exc}") from exc
    return storages


def _configured(config: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """The storages of a TOML file: its ``[server] storages`` (NAME = URL, as the server
    reads them), and ``[storages.NAME]`` tables with a ``url`` and the backend's ``options``
    (credentials included: the file is its owner's, as an rclone.conf is)."""
    import tomllib

    from ferry.cli.daemons import parse_storages

    try:
        data = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"--config {config}: {exc}") from exc
    named = data.get("server", {}).get("storages", {})
    pairs = parse_storages([f"{n}={u}" for n, u in named.items()])
    found: dict[str, tuple[str, dict[str, Any]]] = {n: (u, {}) for n, u in pairs.items()}
    for name, table in data.get("storages", {}).items():
        if not isinstance(table, dict) or not isinstance(table.get("url"), str):
            raise InvalidRequest(f"--config {config}: [storages.{name}] needs a url")
        parse_storages([f"{name}={table['url']}"])  # the name is checked as --storage's
        found[name] = (table["url"], dict(table.get("options", {})))
    return found


class _StoppedBySignals:
    """Ctrl-C or SIGTERM stops the copy (objects not started end CANCELED, a copy in progress
    at its next block, no partial file left) and the summary is still printed."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.before: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            self.before[number] = signal.signal(number, lambda *_: self.job.stop())

    def __exit__(self, *_exc: object) -> None:
        for number, handler in self.before.items():
            signal.signal(number, handler)


class _Bar:
    """Objects and bytes so far, on a terminal only (standard error)."""

    def __init__(self, *, quiet: bool) -> None:
        self.progress: Any = None
        self.objects = 0
        self.lock = threading.Lock()
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            self.progress = Progress(
                "{task.fields[objects]} objects",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.progress.add_task("copy", total=None, objects=0)

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def moved(self, count: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=count)

    def ended(self, _ended: Any) -> None:
        if self.progress is not None:
            with self.lock:
                self.objects += 1
                self.progress.update(self.task, objects=self.objects)


def _summary(report: Any) -> None:
    counts = report.counts
    typer.echo(
        f"{report.status}: {counts['DONE']} copied ({report.bytes:,} bytes),"
        f" {counts['SKIPPED']} skipped, {counts['FAILED']} failed"
        + (f", {counts['CANCELED']} canceled" if counts["CANCELED"] else "")
        + (f", {report.filtered} filtered out" if report.filtered else "")
        + f" in {report.seconds:.2f} s"
    )
    for ended in report.failed:
        typer.echo(f"{ended.status} {ended.source} → {ended.destination}: {ended.error}", err=True)


def register(app: typer.Typer) -> None:
    app.command()(copy)
