"""A simulated link for the mock storage: its total throughput grows with the copies on it up
to a peak concurrency, then falls (a link, a disk or a server that thrashes past its best).

``mock://NAME`` with the option ``link=PATH`` reads its objects through the link whose state
is the JSON file ``PATH``: the copies on it now (``copies``), counted by every process that
opens the file, under an exclusive lock, so that the agents of one server, each a process,
share one link; and the model, ``peak`` (copies), ``rate`` (bytes/s in all at the peak),
``falloff`` and ``jitter``, taken from the storage's options of those names unless the
file has them: writing them there changes the link while copies run. A copy's bytes come at
``total(copies) / copies``, recomputed every ``SLICE`` bytes as copies start and end.

A process killed mid-copy leaves its copies counted: the model is for tests, which make a
new file for each link.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.errors import InvalidRequest

SLICE = 64 * 1024  # bytes between two looks at the copies on the link
LINK_OPTIONS = frozenset({"link", "peak", "rate", "falloff", "jitter"})


@dataclass(frozen=True, slots=True)
class LinkModel:
    """Total throughput ``rate × copies / peak`` up to ``peak`` copies, then
    ``rate / (1 + falloff × (copies − peak) / peak)``: past the peak each copy more slows
    them all."""

    peak: float = 12.0
    rate: float = 24 * 1024 * 1024
    falloff: float = 1.0
    # Each copy's share is its even share times a factor drawn once per copy within
    # 1 ± jitter: copies of equal objects started together would otherwise end together.
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.peak <= 0 or self.rate <= 0 or self.falloff < 0 or not 0 <= self.jitter < 1:
            raise InvalidRequest("mock link: peak > 0, rate > 0, falloff ≥ 0, 0 ≤ jitter < 1")

    def total(self, copies: int) -> float:
        """Bytes/s moved in all by ``copies`` copies at once."""
        if copies <= self.peak:
            return self.rate * copies / self.peak
        return self.rate / (1 + self.falloff * (copies - self.peak) / self.peak)

    def per_copy(self, copies: int) -> float:
        return self.total(max(1, copies)) / max(1, copies)

    def with_changes(self, data: dict[str, Any]) -> LinkModel:
        """The model with the parameters ``data`` names instead of its own."""
        values = {name: float(data.get(name, getattr(self, name))) for name in _MODEL}
        return LinkModel(**values)


_MODEL = ("peak", "rate", "falloff", "jitter")


def link_of(options: dict[str, Any]) -> SharedLink | None:
    """The link the storage's options name (``link``, with ``peak``, ``rate``, ``falloff``),
    or None without ``link``; raises ``InvalidRequest`` for a parameter that is no number."""
    path = options.get("link")
    if not path:
        return None
    try:
        model = LinkModel().with_changes({k: v for k, v in options.items() if k in _MODEL})
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"mock link option: {exc}") from exc
    return SharedLink(Path(path), model)


class SharedLink:
    """The copies on one link, counted in its state file under an exclusive lock."""

    def __init__(self, path: Path, model: LinkModel) -> None:
        self.path = path
        self.model = model

    def enter(self) -> None:
        self._change(lambda state: {**state, "copies": state.get("copies", 0) + 1})

    def leave(self) -> None:
        self._change(lambda state: {**state, "copies": max(0, state.get("copies", 0) - 1)})

    def change_model(self, **parameters: float) -> None:
        """Change the link for every copy on it (``peak``, ``rate``, ``falloff``)."""
        self.model.with_changes(parameters)  # refused here, not by the copies
        self._change(lambda state: {**state, **parameters})

    def now(self) -> tuple[LinkModel, int]:
        """The model in force and the copies on the link now."""
        state = self._change(None)
        return self.model.with_changes(state), int(state.get("copies", 0))

    def _change(self, change: Callable[[dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
        """The state, changed by ``change`` (None: read only), under the file's lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r+") as file:
                text = file.read()
                state: dict[str, Any] = json.loads(text) if text.strip() else {}
                if change is not None:
                    state = change(state)
                    file.seek(0)
                    file.truncate()
                    file.write(json.dumps(state))
            return state
        finally:
            os.close(fd)  # and the lock with it


class LinkReader:
    """``size`` zero bytes, coming at the link's pace for one copy among those on it."""

    def __init__(self, size: int, link: SharedLink) -> None:
        self.left = size
        self.link = link
        self._open = True
        self._luck = 1 + random.uniform(-1, 1) * link.model.jitter
        link.enter()

    def read(self, n: int = -1) -> bytes:
        take = self.left if n is None or n < 0 else min(n, self.left)
        waited = 0
        while waited < take:
            piece = min(SLICE, take - waited)
            model, copies = self.link.now()
            time.sleep(piece / (model.per_copy(copies) * self._luck))
            waited += piece
        self.left -= take
        return bytes(take)

    def close(self) -> None:
        if self._open:
            self._open = False
            self.link.leave()

    def __enter__(self) -> LinkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
