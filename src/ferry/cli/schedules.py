"""Schedule options on the command line, ``ferry schedule preview`` and ``ferry runs``.

WHEN is ISO 8601 with an offset (``2027-01-31T10:00+01:00``), without one (read in ``--tz``),
or relative to now: ``+30s``, ``+10m``, ``+2h``, ``+1d``."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from ferry.cli.common import (
    DataDirOption,
    JsonOption,
    TokenOption,
    TransferIdArgument,
    UrlOption,
    console,
    plain_client,
    print_json,
    seconds,
)
from ferry.domain.schedules import Unit, relative_time, upcoming
from ferry.errors import InvalidRequest

RUN_COLUMNS = (
    "occurrences: the due times a run stands for (those missed while the server was down"
    " coalesce into one run, the first of them its due time); skipped: those that came due"
    " while it ran (runs never overlap); filtered: tree entries the filters left out"
)

AtOption = Annotated[str | None, typer.Option("--at", help="Run once at WHEN.", show_default=False)]
EveryOption = Annotated[
    Unit | None,
    typer.Option("--every", help="Run every UNIT (see --interval).", show_default=False),
]
IntervalOption = Annotated[int, typer.Option("--interval", min=1, help="Every N units.")]
StartOption = Annotated[
    str | None, typer.Option("--start", help="First occurrence (WHEN).", show_default=False)
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="No occurrence after WHEN.", show_default=False)
]
CountOption = Annotated[
    int | None, typer.Option("--count", min=1, help="At most N occurrences.", show_default=False)
]
CronOption = Annotated[
    str | None, typer.Option("--cron", help="5-field cron expression.", show_default=False)
]
TzOption = Annotated[str, typer.Option("--tz", help="IANA time zone of wall-clock times.")]


def parse_when(text: str) -> str:
    """WHEN as the API takes it: a relative time stays relative (the server resolves it when
    the request arrives, so a retried submission is the same submission), an ISO 8601 instant
    is normalized (without an offset it stays without one: read in the schedule's zone)."""
    text = text.strip()
    if relative_time(text, datetime.now(UTC)) is not None:
        return text
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise InvalidRequest(
            f"{text!r} is not a time: use ISO 8601 or +30s, +10m, +2h, +1d"
        ) from exc


@dataclass(frozen=True)
class ScheduleOptions:
    at: str | None = None
    every: Unit | None = None
    interval: int = 1
    start: str | None = None
    until: str | None = None
    count: int | None = None
    cron: str | None = None
    tz: str = "UTC"

    def body(self) -> dict[str, Any] | None:
        """The API's ``schedule`` object, or ``None`` for a direct transfer."""
        kinds = [name for name in ("at", "every", "cron") if getattr(self, name) is not None]
        if len(kinds) > 1:
            raise InvalidRequest(
                f"choose one of --at, --every and --cron, not {' and '.join(kinds)}"
            )
        series_options = self.start or self.until or self.count or self.interval != 1
        if self.cron is not None and self.interval != 1:
            raise InvalidRequest(
                "--interval goes with --every; a cron expression has its own steps"
            )
        if series_options and self.every is None and self.cron is None:
            raise InvalidRequest(
                "--interval, --start, --until and --count go with --every or --cron"
            )
        if not kinds:
            return None
        body: dict[str, Any] = {"kind": kinds[0], "timezone": self.tz}
        if self.at is not None:
            body["at"] = parse_when(self.at)
        if self.every is not None:
            body |= {"unit": self.every.value, "interval": self.interval}
        if self.cron is not None:
            body["expr"] = self.cron
        for name in ("start", "until"):
            if (value := getattr(self, name)) is not None:
                body[name] = parse_when(value)
        if self.count is not None:
            body["count"] = self.count
        return body


def preview(
    at: AtOption = None,
    every: EveryOption = None,
    interval: IntervalOption = 1,
    start: StartOption = None,
    until: UntilOption = None,
    count: CountOption = None,
    cron: CronOption = None,
    tz: TzOption = "UTC",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON list of ISO 8601 strings.")
    ] = False,
) -> None:
    """Print a schedule's next occurrences, computed by the function the scheduler uses."""
    body = ScheduleOptions(at, every, interval, start, until, count, cron, tz).body()
    if body is None:
        raise InvalidRequest("give --at, --every or --cron")
    from ferry.api.schemas import ScheduleIn

    now = datetime.now(UTC)
    schedule = ScheduleIn.model_validate(body).to_domain(now).anchored(now)
    zone = ZoneInfo(tz)
    times = [
        t.astimezone(zone).isoformat() for t in itertools.islice(upcoming(schedule, now), limit)
    ]
    if not times:
        raise InvalidRequest(
            "the schedule has no occurrence left (until has passed or count is spent)"
        )
    typer.echo(json.dumps(times) if as_json else "\n".join(times))


def runs(
    transfer_id: TransferIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List a transfer's runs: when each was due, the occurrences it stands for, when it ran
    and ended, and what it moved."""
    with plain_client(url, token, data_dir) as client:
        found = client.runs(transfer_id)
    if as_json:
        print_json(found)
        return
    from rich.table import Table

    table = Table(
        "run",
        "status",
        "due",
        "occurrences",
        "started",
        "finished",
        "objects",
        "bytes",
        "skipped",
        "filtered",
        caption=RUN_COLUMNS,
    )
    for r in found:
        n = r["occurrences"]
        table.add_row(
            str(r["number"]),
            r["status"],
            seconds(r["due_at"]),
            f"{n} (from due on)" if n > 1 else str(n),
            seconds(r["started_at"]),
            seconds(r["finished_at"]),
            f"{r['objects']['done']}/{r['objects']['total']}",
            str(r["bytes"]),
            str(r["skipped_occurrences"]),
            str(r["objects"].get("filtered", 0)),
        )
    console().print(table)
    for r in found:  # what each run's --delete-extra step did, or why it deleted nothing
        if (deletion := r.get("deletion")) and deletion.get("note"):
            typer.echo(f"run {r['number']}: {deletion['state']}: {deletion['note']}")


def register(app: typer.Typer) -> None:
    schedule_app = typer.Typer(help="Check schedules before trusting them.", no_args_is_help=True)
    schedule_app.command("preview")(preview)
    app.add_typer(schedule_app, name="schedule")
    app.command()(runs)
