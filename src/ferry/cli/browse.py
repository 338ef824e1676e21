"""``ferry ls STORAGE:PATH``: what a storage holds at a path, listed by the server as a
transfer of the scope would read it (``scheduler/browse.py``): a folder's entries by name,
with their size and modification time; a file, itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ferry.cli.common import console, print_json
from ferry.domain.locations import parse_location

if TYPE_CHECKING:
    from ferry.client.plain import PlainClient


def list_storage(
    client: PlainClient, text: str, scope: str, limit: int, every_page: bool, as_json: bool
) -> None:
    location = parse_location(text)
    entries: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.entries(
            location.storage, location.path, scope=scope, after=after, limit=min(limit, 10_000)
        )
        entries += page["entries"]
        after = page["next_after"]
        if after is None or (not every_page and len(entries) >= limit):
            break
    entries = entries if every_page else entries[:limit]
    if as_json:
        print_json(entries)
        return
    from rich.table import Table

    table = Table(box=None)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("modified", no_wrap=True)
    table.add_column("name", overflow="fold")
    for entry in entries:
        size = "" if entry["size"] is None else f"{entry['size']:,}"
        when = entry["mtime"]
        shown = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds") if when else ""
        table.add_row(size, shown, entry["name"] + ("/" if entry["folder"] else ""))
    console().print(table)
    if after is not None and not every_page:
        console().print(f"… more after {after!r}: --all lists every entry")
