"""The reliability suite (``make chaos``, issue 22): the end-to-end tests' servers, agents and
helpers (tests/e2e) under failure. Long scenarios are marked ``chaos`` and left out of
``make test``; the unmarked ones are the fast subset CI runs."""

from __future__ import annotations

import sys
from pathlib import Path

E2E = str(Path(__file__).resolve().parent.parent / "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)

from server_fixtures import daemons, module_server, start_server  # noqa: E402

__all__ = ["daemons", "module_server", "start_server"]
