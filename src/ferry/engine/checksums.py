"""Checksums computed on the same buffers that are written (adler32 default, md5, sha256)."""

from __future__ import annotations

import hashlib
from typing import Protocol

from zlib_ng import zlib_ng

from ferry.domain.options import Checksum


class RunningChecksum(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...

    def hexdigest(self) -> str: ...


class Adler32:
    """adler32, carried across blocks; printed as 8 hex digits like gfal2 and FTS. zlib-ng's,
    the same sums as zlib's: its vector code sums a block about thirteen times as fast (1 GiB
    in ≈ 0.05 s against ≈ 0.6 s on the benchmark machine), and a verified copy sums every byte
    twice, once read and once read back."""

    def __init__(self) -> None:
        self._value = 1

    def update(self, data: bytes | memoryview) -> None:
        self._value = zlib_ng.adler32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


class _Hashlib:
    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def new_checksum(algorithm: Checksum) -> RunningChecksum | None:
    """A running checksum for ``algorithm``, or ``None`` for ``none``."""
    if algorithm is Checksum.NONE:
        return None
    if algorithm is Checksum.ADLER32:
        return Adler32()
    return _Hashlib(algorithm.value)


def format_checksum(algorithm: Checksum, digest: str) -> str:
    return f"{algorithm.value}:{digest}"
