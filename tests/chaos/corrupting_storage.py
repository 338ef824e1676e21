"""A local folder whose reads go wrong now and then, for the reliability suite's corrupting
storage (test_corrupting_storage.py): ``corrupting:///path`` is the folder ``/path``, and one
file opened for reading in ``every`` is damaged on its way to the reader.

It reaches the server and its agents (other processes) as any installed fsspec backend does:
through an ``fsspec.specs`` entry point, read from a distribution's metadata on the import path.
``install_plugin`` writes that metadata into a folder, to be put on the processes'
``PYTHONPATH``; nothing in Ferry knows of it.

Storage options: ``every`` (one opened file in N is damaged), ``damage`` (``flip``: one byte
of one read is inverted; ``truncate``: the file ends early, at a random point), ``journal`` (a
file each damage is appended to as one JSON line: path, damage, offset, pid)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

PROTOCOL = "corrupting"
DAMAGES = ("flip", "truncate")
_HERE = Path(__file__).resolve().parent


def install_plugin(folder: Path) -> str:
    """Write the entry point's distribution into ``folder``; return the ``PYTHONPATH`` that
    makes the server and its agents register ``corrupting://`` (this module's folder, then
    ``folder``, then what was there)."""
    info = folder / "ferry_chaos_corrupting-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ferry-chaos-corrupting\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[fsspec.specs]\n{PROTOCOL} = corrupting_storage:CorruptingFileSystem\n"
    )
    before = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(part for part in (str(_HERE), str(folder), before) if part)


class CorruptingFileSystem(LocalFileSystem):
    """The local filesystem, but each file opened for reading is damaged with probability
    ``1 / every`` (once: one damage per opened file)."""

    protocol = (PROTOCOL,)

    def __init__(
        self, every: int = 5, damage: str = "flip", journal: str | None = None, **kwargs: Any
    ) -> None:
        if damage not in DAMAGES:
            raise ValueError(f"damage must be one of {DAMAGES}, not {damage!r}")
        super().__init__(**kwargs)
        self.every, self.damage, self.journal = int(every), damage, journal

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        opened = super()._open(path, mode, **kwargs)
        if "r" not in mode or random.randrange(self.every) != 0:
            return opened
        size = os.path.getsize(self._strip_protocol(path))
        if size == 0:
            return opened  # nothing to damage
        return DamagedReads(opened, self._strip_protocol(path), size, self.damage, self.journal)


class DamagedReads:
    """A file opened for reading whose bytes are damaged once: one byte at a random offset
    inverted (``flip``), or its end moved to a random offset before the real one
    (``truncate``). The damage is written to the journal when it is done."""

    def __init__(self, opened: Any, path: str, size: int, damage: str, journal: str | None) -> None:
        self._opened, self._path, self._damage, self._journal = opened, path, damage, journal
        self._at = random.randrange(size)  # the byte flipped, or where the file now ends
        self._position = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        start = self._position
        if self._damage == "truncate":
            room = max(self._at - start, 0)
            data = self._opened.read(room if size < 0 else min(size, room))
            if len(data) < size or size < 0:
                self._note()  # the reader is told the file ends here
        else:
            data = self._opened.read(size)
            if start <= self._at < start + len(data):
                flipped = bytearray(data)
                flipped[self._at - start] ^= 0xFF
                data = bytes(flipped)
                self._note()
        self._position += len(data)
        return data

    def _note(self) -> None:
        if self._done:
            return
        self._done = True
        if self._journal:
            line = {"path": self._path, "damage": self._damage, "at": self._at, "pid": os.getpid()}
            with open(self._journal, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self._opened.close()

    def __enter__(self) -> DamagedReads:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._opened, name)


def damages(journal: Path) -> list[dict[str, Any]]:
    """What the journal says was damaged, in order."""
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text().splitlines() if line]
