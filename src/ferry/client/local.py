"""The client's own files in a passive transfer (``push``, ``pull``): what to send, their
checksums, and pulled objects written beside their final name, verified, then renamed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ferry.domain.options import Checksum
from ferry.engine.checksums import format_checksum, new_checksum
from ferry.errors import ChecksumMismatch, InvalidRequest

BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LocalObject:
    path: Path
    name: str  # below the destination folder
    size: int
    mtime: float


def objects_to_push(paths: list[Path], *, tree: bool) -> list[LocalObject]:
    """Each file under its own name; with ``tree``, each folder's contents with their paths."""
    found: list[LocalObject] = []
    for path in paths:
        if path.is_dir():
            if not tree:
                raise InvalidRequest(f"{path} is a folder: push its contents with --tree")
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    file = Path(folder) / name
                    found.append(_local(file, file.relative_to(path).as_posix()))
        elif path.is_file():
            found.append(_local(path, path.name))
        else:
            raise InvalidRequest(f"{path}: no such file or folder")
    return found


def _local(path: Path, name: str) -> LocalObject:
    stat = path.stat()
    return LocalObject(path, name, stat.st_size, stat.st_mtime)


def checksum_of(path: Path, algorithm: Checksum) -> str:
    algorithm = Checksum.ADLER32 if algorithm is Checksum.NONE else algorithm
    running = new_checksum(algorithm)
    assert running is not None
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            running.update(block)
    return format_checksum(algorithm, running.hexdigest())


def read_blocks(path: Path, progress: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            progress(len(block))
            yield block


class PulledFile:
    """One pulled object: written to ``.NAME.ferry-pull.part`` beside it, its checksum
    computed on the way, renamed into place only when it matches the server's."""

    def __init__(self, folder: Path, name: str, algorithm: Checksum) -> None:
        self.final = _inside(folder, name)
        self.temporary = self.final.with_name(f".{self.final.name}.ferry-pull.part")
        self.algorithm = Checksum.ADLER32 if algorithm is Checksum.NONE else algorithm
        self.running = new_checksum(self.algorithm)
        self.size = 0
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.temporary.open("wb")

    def write(self, block: bytes) -> None:
        assert self.running is not None
        self.running.update(block)
        self._handle.write(block)
        self.size += len(block)

    def keep(self, expected: str | None) -> str:
        """Close, compare, rename; the checksum of what arrived."""
        assert self.running is not None
        self._handle.close()
        got = format_checksum(self.algorithm, self.running.hexdigest())
        if expected is not None and expected.lower() != got:
            self.discard()
            raise ChecksumMismatch(str(self.final), expected, got)
        os.replace(self.temporary, self.final)
        return got

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.temporary.unlink()


def _inside(folder: Path, name: str) -> Path:
    """``name`` below ``folder``, never outside it (the server names pulled objects)."""
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise InvalidRequest(f"{name!r} would land outside {folder}")
    return target
