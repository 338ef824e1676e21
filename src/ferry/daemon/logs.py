"""Logging for the daemons: one line per event, levels per subsystem."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str, *, daemon: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {daemon} %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("ferry").setLevel(level.upper())
    logging.getLogger("uvicorn.error").setLevel(level.upper())
