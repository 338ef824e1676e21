"""What a person reads of a transfer's schedule: the schedule in words and its times in the
reader's time zone (``--tz``, default the machine's own), from the API's JSON."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ferry.errors import InvalidRequest


def reader_zone(name: str | None) -> tzinfo | None:
    """``name`` as a time zone; ``None``: the machine's local one."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"--tz {name!r}: not a time zone (e.g. Europe/Rome, UTC)") from None


def when(instant: str | None, zone: tzinfo | None) -> str:
    """An API time in the reader's zone, to the second, with the zone's name."""
    if instant is None:
        return "–"
    local = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")


def schedule_in_words(schedule: dict[str, Any], zone: tzinfo | None) -> str:
    """``every 2 hours from 2026-12-06 02:30:00 CET (Europe/Rome), 5 times``."""
    kind = schedule.get("kind", "direct")
    if kind == "direct":
        return "once, now"
    if kind == "at":
        return f"once, at {when(schedule.get('at'), zone)}"
    if kind == "every":
        interval, unit = schedule.get("interval", 1), schedule.get("unit") or "?"
        words = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    else:
        words = f"cron {schedule.get('expr')!r}"
    words += f" in {schedule.get('timezone', 'UTC')}"
    if schedule.get("start"):
        words += f", from {when(schedule['start'], zone)}"
    if schedule.get("until"):
        words += f", until {when(schedule['until'], zone)}"
    if schedule.get("count") is not None:
        words += f", {schedule['count']} times"
    return words
