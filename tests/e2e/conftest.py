"""Fixtures: real ``ferry server`` processes on loopback ports (see e2e_support), defined in
server_fixtures so that the reliability suite (tests/chaos) uses the same ones."""

from __future__ import annotations

from server_fixtures import daemons, module_server, start_server

__all__ = ["daemons", "module_server", "start_server"]
