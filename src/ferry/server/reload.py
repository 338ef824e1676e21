"""SIGHUP: read the configuration again and apply what can change while running (DaemonCore's
reconfig): log levels, limits and intervals, the storages declared in the file, where callers
may come from (``access``). Each change is logged; one that needs a restart (address, TLS,
database, data folder, local agents) says so. Each reload is recorded in the audit trail by the
keys it changed (never their values, which may hold a storage's credentials), 422 when the file
was refused."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from ferry.config import ServerSettings
from ferry.daemon.config import load_settings
from ferry.daemon.logs import configure_logging
from ferry.errors import ConfigError
from ferry.scheduler.notify import NotifyLoop
from ferry.scheduler.optimizer import OptimizerLoop
from ferry.scheduler.registry import RegistryLoop
from ferry.server.app import declare_storage, registry_timings
from ferry.server.audit_trail import record
from ferry.server.state import ServerState
from ferry.store.abc import AuditEntry

log = logging.getLogger("ferry.daemon")

AT_RESTART = frozenset(
    {"host", "port", "data_dir", "db", "agents", "agent_max_active", "local_root"}
    | {"tls_cert", "tls_key", "tls_ca", "insecure_http"}
)


def changes(old: ServerSettings, new: ServerSettings) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose value differs, with the old and the new value."""
    before, after = _flat(old.model_dump()), _flat(new.model_dump())
    return {
        key: (before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "storages":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


async def reload_settings(
    state: ServerState, path: Path | None, given: dict[str, Any], *, cause: str = "SIGHUP"
) -> bool:
    """Apply the configuration as it is now; False (nothing changed) when it is invalid."""
    try:
        await apply_settings(state, path, given, cause=cause)
    except ConfigError:
        return False
    return True


async def apply_settings(
    state: ServerState,
    path: Path | None,
    given: dict[str, Any],
    *,
    cause: str = "SIGHUP",
    actor: str = "signal",
) -> list[str]:
    """Apply the configuration as it is now and return the keys that changed (each logged,
    prefixed by ``cause``, and recorded in the audit trail as ``actor``'s act); raises
    ``ConfigError`` when the file is refused, which changes nothing."""
    try:
        new = load_settings(ServerSettings, path=path, section="server", given=given)
    except ConfigError as exc:
        log.error("%s: configuration not reloaded: %s", cause, exc)
        await _audit(state, actor, cause, 422, [])
        raise
    old = state.settings
    changed = changes(old, new)
    if not changed:
        log.info("%s: configuration reloaded; nothing changed", cause)
        await _audit(state, actor, cause, 200, [])
        return []
    for key, (before, after) in changed.items():
        later = " (takes effect at the next start)" if key.split(".")[0] in AT_RESTART else ""
        log.info("%s: %s: %r → %r%s", cause, key, before, after, later)
    kept = {name: getattr(old, name) for name in AT_RESTART}
    state.settings = new.model_copy(update=kept)
    configure_logging(state.settings.log, daemon="server")
    await _declare_storages(state, old.storages, state.settings.storages)
    _retime_loops(state)
    await _audit(state, actor, cause, 200, sorted(changed))
    return sorted(changed)


async def _audit(
    state: ServerState, actor: str, cause: str, status: int, changed: list[str]
) -> None:
    entry = AuditEntry(actor, None, None, f"{cause} reload", {"changed": changed}, status)
    await record(state.store, entry)


async def _declare_storages(state: ServerState, old: dict[str, str], new: dict[str, str]) -> None:
    for name, url in new.items():
        if old.get(name) != url:
            await declare_storage(state.store, name, url)
            state.storages.forget(name)
            log.info("SIGHUP: storage %s declared (%s)", name, url)
    for name in sorted(set(old) - set(new)):
        log.warning(
            "SIGHUP: storage %s is no longer declared; it stays registered"
            " (ferry storage rm %s removes it)",
            name,
            name,
        )


def _retime_loops(state: ServerState) -> None:
    settings = state.settings
    for loop in state.loops:
        if isinstance(loop, RegistryLoop):
            loop.timings = registry_timings(settings)
        elif isinstance(loop, NotifyLoop):
            loop.retry_base = timedelta(seconds=settings.notify_retry_s)
        elif isinstance(loop, OptimizerLoop):
            loop.window_s = settings.optimizer_window_s
