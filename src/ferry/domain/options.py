"""What a transfer's options are spelled with: checksums, overwrite rules, sizes and rates.

Apart from the entities (``transfers.py``) because the command line needs these alone, and a
command pays for every module it imports (``ferry submit`` starts without the entities)."""

from __future__ import annotations

from enum import StrEnum

from ferry.errors import InvalidRequest


class Checksum(StrEnum):
    ADLER32 = "adler32"
    MD5 = "md5"
    SHA256 = "sha256"
    NONE = "none"


class Overwrite(StrEnum):
    """What to do when the destination exists: skip it (``never``, the default, recorded as
    SKIPPED), replace it, replace it when the source is newer, or when size or checksum differ."""

    NEVER = "never"
    ALWAYS = "always"
    IF_NEWER = "if-newer"
    IF_DIFFERENT = "if-different"


_RATE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_rate(text: str) -> int:
    """``10M`` → bytes per second (K, M, G are powers of 1024, as rclone's --bwlimit)."""
    return _bytes(text.upper().removesuffix("/S"), text, "a rate", "bytes per second")


def parse_size(text: str) -> int:
    """``10G`` → bytes (K, M, G, T are powers of 1024)."""
    return _bytes(text, text, "a size", "bytes")


def _bytes(value: str, text: str, what: str, unit_name: str) -> int:
    value = value.strip().upper().removesuffix("B")
    number, unit = (value[:-1], value[-1]) if value and value[-1] in "KMGT" else (value, "")
    try:
        amount = float(number) * _RATE_UNITS[unit]
    except ValueError as exc:
        raise InvalidRequest(
            f"{text!r} is not {what}: use e.g. 500K, 10M, 1G ({unit_name})"
        ) from exc
    if amount < 1:
        raise InvalidRequest(f"{what} must be at least 1 of {unit_name}, not {text!r}")
    return int(amount)
