"""``ferry submit | status | ls | outcomes | cancel | rerun | watch``: thin over the clients,
the plain one (JSON as the server sent it) where a command asks and prints, the typed one where
it waits or follows."""

from __future__ import annotations

import json
from collections import Counter
from datetime import tzinfo
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    TransferIdArgument,
    UrlOption,
    complete_location,
    console,
    plain_client,
    print_json,
    seconds,
)
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
from ferry.cli.progress import TransferBar
from ferry.cli.replicas import (
    ExpectedChecksumOption,
    ReplicaOption,
    checksum_options,
    replica_in_words,
    source_in_words,
    sources_with_replicas,
)
from ferry.cli.schedules import (
    AtOption,
    CountOption,
    CronOption,
    EveryOption,
    IntervalOption,
    ScheduleOptions,
    StartOption,
    TzOption,
    UntilOption,
)
from ferry.cli.sync import (
    DeleteExtraOption,
    DryRunOption,
    MaxDeleteOption,
    SyncOption,
    print_plan,
    sync_options,
)
from ferry.cli.words import reader_zone, schedule_in_words, when
from ferry.domain.options import Checksum, Overwrite, parse_rate, parse_size
from ferry.domain.states import TaskState
from ferry.errors import InvalidRequest

if TYPE_CHECKING:
    from rich.console import Console

Json = dict[str, Any]


def _print_transfer(t: Json, zone: tzinfo | None = None) -> None:
    """A transfer as the API gives it (``TransferPublic``), in a few lines, its times in
    ``zone`` (default: the machine's); plain text, so that printing it needs no console
    library."""
    o = t["objects"]
    lines = [
        f"{t['id']}  {t['status']}  ({t['kind']})",
        f"  from {', '.join(map(source_in_words, t['sources']))}  to {t['destination']}",
        f"  schedule: {schedule_in_words(t['schedule'], zone)}",
    ]
    if t.get("paused_at"):
        stopped = ", its copies stopped" if t.get("pause_stops") else ""
        lines.append(
            f"  paused since {when(t['paused_at'], zone)}{stopped}: no object starts and"
            " occurrences due are skipped until `ferry resume`"
        )
    if t.get("next_run_at"):
        lines.append(f"  next run: {when(t['next_run_at'], zone)}")
    lines += _timing(t.get("options", {}), zone)
    lines += [
        f"  objects: {o['total']} total, {o['done']} done, {o['skipped']} skipped,"
        f" {o['failed']} failed, {o['canceled']} canceled; {t['bytes']} bytes; runs: {t['runs']}",
    ]
    if o.get("filtered"):
        lines.append(f"  filtered out: {o['filtered']} entries of the tree (not objects)")
    if (p := t.get("progress")) is not None:
        total = f" of {p['bytes_total']}" if p["bytes_total"] is not None else ""
        rate = f", {p['rate_bps'] / 1e6:.1f} MB/s" if p["rate_bps"] else ""
        eta = f", about {p['eta_s']:.0f} s left" if p["eta_s"] else ""
        lines.append(f"  moving: {p['bytes_moved']}{total} bytes{rate}{eta}")
    if t.get("error"):
        lines.append(f"  error: {t['error']}")
    typer.echo("\n".join(lines))


def _timing(options: Json, zone: tzinfo | None) -> list[str]:
    """The transfer's deadline and lateness options, in words."""
    lines = []
    if (seconds := options.get("deadline_s")) is not None:
        lines.append(f"  deadline: each run ends {seconds} s after it was due")
    elif (at := options.get("deadline_at")) is not None:
        lines.append(f"  deadline: {when(at, zone)}")
    if (late := options.get("late_after_s")) is not None:
        lines.append(f"  late: a run not started {late} s after it was due is told late")
    return lines


def submit(
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
    wait: Annotated[
        bool, typer.Option("--wait", help="Block until finished; exit 1 unless COMPLETED.")
    ] = False,
    submission_id: Annotated[
        str | None, typer.Option(help="Idempotency key for resubmission.")
    ] = None,
    overwrite: Annotated[
        Overwrite, typer.Option("--overwrite", help="When the destination exists.")
    ] = Overwrite.NEVER,
    checksum: Annotated[
        Checksum, typer.Option("--checksum", help="Checksum computed and verified.")
    ] = Checksum.ADLER32,
    verify_source: Annotated[
        bool,
        typer.Option(
            "--verify-source",
            help="Read each source a second time and retry an object whose two reads differ"
            " (a byte damaged on its way out of the source). One more read of every source.",
        ),
    ] = False,
    unzip: Annotated[
        bool, typer.Option("--unzip", help="Unpack zip/tar sources into DEST.")
    ] = False,
    unzip_max_bytes: Annotated[
        str | None,
        typer.Option(
            "--unzip-max-bytes",
            help="With --unzip: what an archive may expand to (10G); past it, refused whole."
            " Default: 100 times the archive, at least 16M.",
            show_default=False,
        ),
    ] = None,
    bandwidth: Annotated[
        str | None,
        typer.Option(
            "--bandwidth", help="Per-object limit, bytes/s: 500K, 10M.", show_default=False
        ),
    ] = None,
    scope: Annotated[str, typer.Option(help="The scope (tenant) it belongs to.")] = "default",
    priority: Annotated[
        int, typer.Option(min=1, max=5, help="1..5; higher goes first within its scope.")
    ] = 3,
    retries: Annotated[
        int, typer.Option(min=0, max=100, help="Retries per object after transient errors.")
    ] = 3,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A tag to find it by (repeatable).")
    ] = None,
    notify: Annotated[
        str | None,
        typer.Option(help="http(s) URL that receives each run's outcome (POST, JSON)."),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            help="When each run must end: +30s, +10m, +6h, +1d after it was due, or (run once)"
            " an ISO time with its offset. Objects not done by then are CANCELED.",
            show_default=False,
        ),
    ] = None,
    late_after: Annotated[
        str | None,
        typer.Option(
            "--late-after",
            help="A run not started this long after it was due (5m, 1h) is late: an event"
            " and the --notify URL say so.",
            show_default=False,
        ),
    ] = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    filter_rule: FilterOption = None,
    min_size: MinSizeOption = None,
    max_size: MaxSizeOption = None,
    min_age: MinAgeOption = None,
    max_age: MaxAgeOption = None,
    skip_source_errors: SkipSourceErrorsOption = False,
    sync: SyncOption = None,
    delete_extra: DeleteExtraOption = False,
    max_delete: MaxDeleteOption = None,
    dry_run: DryRunOption = False,
    replica: ReplicaOption = None,
    expected_checksum: ExpectedChecksumOption = None,
    at: AtOption = None,
    every: EveryOption = None,
    interval: IntervalOption = 1,
    start: StartOption = None,
    until: UntilOption = None,
    count: CountOption = None,
    cron: CronOption = None,
    tz: TzOption = "UTC",
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Submit a transfer: each SOURCE into the folder DEST (--tree: a folder's contents), now,
    --at WHEN, --every UNIT or on a --cron expression."""
    if len(locations) < 2:
        raise InvalidRequest("give at least one SOURCE and a DEST")
    if wait and dry_run:
        raise InvalidRequest("--dry-run submits nothing to --wait for")
    if wait and (every or cron) and not (count or until):
        raise InvalidRequest(
            "--wait on a periodic transfer needs --count or --until: it never ends"
        )
    sources = sources_with_replicas(locations[:-1], replica, tree=tree)
    chosen = TreeFilterOptions(
        include, exclude, filter_rule, min_size, max_size, min_age, max_age
    ).body()
    with plain_client(url, token, data_dir) as client:
        schedule = ScheduleOptions(at, every, interval, start, until, count, cron, tz).body()
        options: dict[str, Any] = {
            "overwrite": overwrite.value,
            "checksum": checksum.value,
            "unzip": unzip,
            "bandwidth": parse_rate(bandwidth) if bandwidth else None,
            "unzip_max_bytes": parse_size(unzip_max_bytes) if unzip_max_bytes else None,
            "priority": priority,
            "retries": retries,
            "labels": label or [],
            "notify": notify,
            "deadline": deadline,
            "late_after": late_after,
        }
        if skip_source_errors:  # only when asked: a server of the previous release refuses it
            options["skip_source_errors"] = True
        if verify_source:
            options["verify_source"] = True
        if chosen is not None:
            options["filters"] = chosen
        options |= sync_options(sync, delete_extra, max_delete)
        options.update(checksum_options(expected_checksum, checksum.value))
        submission: dict[str, Any] = {
            "tree": tree,
            "submission_id": submission_id,
            "schedule": schedule,
            "options": options,
            "scope": scope,
        }
        if dry_run:
            found = client.plan(sources, locations[-1], **submission)
            print_json(found) if as_json else print_plan(found)
            return
        transfer = client.submit(sources, locations[-1], **submission)
        if wait:
            with TransferBar(client, transfer["id"], quiet=as_json) as bar:
                transfer = client.wait(transfer["id"], on_event=bar.show)
    print_json(transfer) if as_json else _print_transfer(transfer)
    if wait and transfer["status"] != "COMPLETED":
        raise SystemExit(1)


def status(
    transfer_id: TransferIdArgument,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", help="Times in this zone (default: this machine's).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show one transfer: its schedule in words, its next run, its objects."""
    zone = reader_zone(tz)
    with plain_client(url, token, data_dir) as client:
        transfer = client.get(transfer_id)
    print_json(transfer) if as_json else _print_transfer(transfer, zone)


def ls(
    location: Annotated[
        str | None,
        typer.Argument(
            help="STORAGE:PATH: list what the storage holds there (as --scope would read it),"
            " not transfers.",
            show_default=False,
            autocompletion=complete_location,
        ),
    ] = None,
    status: Annotated[str | None, typer.Option(help="Only transfers in this status.")] = None,
    submitter: Annotated[str | None, typer.Option(help="Only those this client submitted.")] = None,
    scope: Annotated[str | None, typer.Option(help="Only those of this scope.")] = None,
    kind: Annotated[str | None, typer.Option(help="file or tree.")] = None,
    schedule: Annotated[
        str | None, typer.Option(help="Schedule kind: direct, at, every, cron.")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Only those with this label.")] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="Only those whose id starts with, a label is, or a path contains this text.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    every_page: Annotated[
        bool, typer.Option("--all", help="Every match, following the pages (ignores --limit).")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List transfers, newest first; or, given STORAGE:PATH, what a storage holds there."""
    if location is not None:
        from ferry.cli.browse import list_storage

        with plain_client(url, token, data_dir) as client:
            list_storage(client, location, scope or "default", limit, every_page, as_json)
        return
    filters = {
        "status": status,
        "submitter": submitter,
        "scope": scope,
        "kind": kind,
        "schedule": schedule,
        "label": label,
        "q": search,
    }
    with plain_client(url, token, data_dir) as client:
        items = (
            client.list_all(**filters)
            if every_page
            else client.list(limit=limit, **filters)["items"]
        )
    if as_json:
        print_json(items)
        return
    from rich.table import Table

    table = Table()
    table.add_column("id", no_wrap=True)  # a short id: any 6 characters or more stand for it
    for name in ("status", "kind", "objects", "bytes", "created"):
        table.add_column(name, overflow="fold")
    for t in items:
        table.add_row(
            t["id"][:8],
            t["status"],
            t["kind"],
            f"{t['objects']['done']}/{t['objects']['total']}",
            str(t["bytes"]),
            seconds(t["created_at"]),
        )
    console().print(table)


def outcomes(
    transfer_id: TransferIdArgument,
    run: Annotated[
        int | None, typer.Option(min=1, help="Run number (default: the latest).")
    ] = None,
    status: Annotated[
        TaskState | None, typer.Option(help="Only objects in this state.", show_default=False)
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N objects.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Per-object outcome of a run: what moved, what was skipped, what failed and why.

    Objects come in number order; with --json each object's "id" is its number within the
    run, given in listing order (in a run made before schema revision 0015, its task's id).
    An object not started yet shows QUEUED with 0 attempts.
    """
    with plain_client(url, token, data_dir) as client:
        state = status.value if status else None
        result = client.outcomes(transfer_id, run=run, status=state, limit=limit)
    if as_json:
        print_json(result)
    else:
        _print_outcomes(result)


def _print_outcomes(result: Json) -> None:
    if not result["started"]:
        typer.echo(result["message"] or "not started")
        return
    from rich.table import Table

    table = Table(title=f"run {result['run']}: {result['status']}")
    for name in ("status", "source", "destination", "size", "checksum", "attempts", "error"):
        short = name in ("status", "size", "checksum", "attempts")
        table.add_column(name, no_wrap=short, overflow="fold")  # paths and errors wrap, never cut
    for o in result["objects"]:
        table.add_row(
            o["status"],
            replica_in_words(o),
            o["destination"],
            str(o["size"] if o["size"] is not None else ""),
            o["checksum"] or "",
            str(o["attempts"]),
            o["error"] or "",
        )
    console().print(table)


def cancel(
    transfer_id: TransferIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Cancel a transfer: queued objects at once, active ones at their next heartbeat."""
    with plain_client(url, token, data_dir) as client:
        result = client.cancel(transfer_id)
    if as_json:
        print_json(result)
    else:
        typer.echo(f"{result['id']}: {result['outcome']}")


def rerun(
    transfer_id: TransferIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Submit a transfer's spec again (sources, destination, options, labels, scope), to run
    now; prints the new transfer."""
    with plain_client(url, token, data_dir) as client:
        transfer = client.rerun(transfer_id)
    if as_json:
        print_json(transfer)
    else:
        _print_transfer(transfer)


def watch(
    transfer_id: TransferIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Follow a transfer live (server-sent events) until it ends; exit 1 unless COMPLETED.
    A periodic transfer is followed until interrupted or finished."""
    with (
        plain_client(url, token, data_dir) as client,
        TransferBar(client, transfer_id, quiet=as_json) as bar,
    ):

        def show(event: dict[str, Any]) -> None:
            if as_json:
                typer.echo(json.dumps(event, ensure_ascii=False))
                return
            _print_event(bar.console, event)
            bar.show(event)

        transfer = client.wait(transfer_id, on_event=show, kinds=None)
    if transfer["status"] != "COMPLETED":
        raise SystemExit(1)


def _print_event(out: Console, event: dict[str, Any]) -> None:
    kind = event["event"]
    if kind == "transfer":
        error = f": {event['error']}" if event.get("error") else ""
        out.print(f"transfer {event['transfer']}: {event['status']}{error}", markup=False)
    elif kind == "run":
        o = event["objects"]
        out.print(
            f"run {event['run']}: {event['status']} ({o['done']} done, {o['skipped']} skipped,"
            f" {o['failed']} failed, {o['canceled']} canceled; {event['bytes']} bytes)"
        )
    elif kind == "tasks":
        failed = [c for c in event["changes"] if c["state"] in ("FAILED", "WAITING")]
        states = Counter(c["state"] for c in event["changes"])
        out.print("objects: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
        for change in failed[:5]:
            out.print(f"  task {change['task']}: {change['error']}", markup=False)
    elif kind == "progress" and not out.is_terminal:  # on a terminal: the bar
        total = f" of {event['bytes_total']}" if event.get("bytes_total") else ""
        rate = f", {event['rate_bps'] / 1e6:.1f} MB/s" if event.get("rate_bps") else ""
        out.print(f"moving: {event['bytes_moved']}{total} bytes{rate}")


def register(app: typer.Typer) -> None:
    for command in (submit, status, ls, outcomes, cancel, rerun, watch):
        app.command()(command)
