"""Where each of a daemon's settings came from (DaemonCore's config_val): the command line, a
``FERRY_*`` environment variable, the ``--config`` file, or the default, in that priority,
the order ``ferry.daemon.config.load_settings`` reads them in. A secret's value is never
told: only that it is set."""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from ferry.daemon.config import read_section
from ferry.errors import NotFound

COMMAND_LINE, ENVIRONMENT, FILE, DEFAULT = "command line", "environment", "file", "default"
# A key any part of which names a secret, or a value holding a URL with a password in it.
_SECRET_NAME = re.compile(r"token|secret|password|passphrase|(^|_)key($|_)")
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:[^@\s/]+@")


@dataclass(frozen=True)
class SettingValue:
    """One setting as a daemon has it now: its dotted ``key``, its ``value`` (``None`` when
    ``hidden``) and its ``source``."""

    key: str
    value: Any
    source: str
    hidden: bool = False


@dataclass(frozen=True)
class SettingsOrigin:
    """What a daemon's settings were read from: the ``[section]`` of the file at ``path``, the
    command line's ``given`` values (``None``: not given), variables named ``env_prefix`` +
    the key, and which command-line options took their value from a variable of their own
    (``from_environment``, such as ``--server`` from ``FERRY_URL``)."""

    path: Path | None
    section: str
    given: dict[str, Any]
    env_prefix: str
    from_environment: frozenset[str] = field(default_factory=frozenset)

    def source_of(self, key: str) -> str:
        """Which source gave ``key`` (dotted: ``log.level``) its value; the file is read as
        it is now."""
        parts = key.split(".")
        if _holds(self.given, parts):
            return ENVIRONMENT if parts[0] in self.from_environment else COMMAND_LINE
        if self._in_environment(parts):
            return ENVIRONMENT
        if _holds(read_section(self.path, self.section), parts):
            return FILE
        return DEFAULT

    def _in_environment(self, parts: list[str]) -> bool:
        """A variable for the key or for one of the tables holding it (pydantic-settings reads
        ``FERRY_LOG__LEVEL``, and ``FERRY_LOG`` as JSON)."""
        names = {name.upper() for name in os.environ}
        return any(
            f"{self.env_prefix}{'__'.join(parts[:depth])}".upper() in names
            for depth in range(1, len(parts) + 1)
        )


def _holds(values: dict[str, Any], parts: list[str]) -> bool:
    """Whether ``values`` has a value (not ``None``) at the key path ``parts``."""
    found: Any = values
    for part in parts:
        if not isinstance(found, dict) or found.get(part) is None:
            return False
        found = found[part]
    return True


def setting(settings: BaseModel, origin: SettingsOrigin, key: str) -> SettingValue:
    """The setting ``key`` of ``settings``, its source, and whether it is hidden (a secret
    that is set; one that is not is told as ``None``). Raises
    ``NotFound`` (with a guess for a misspelling) for a key the daemon does not have."""
    values = _flat(settings.model_dump(mode="json"))
    if key not in values:
        guess = difflib.get_close_matches(key, sorted(values), 1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise NotFound(f"no setting {key!r} in the {origin.section}'s configuration{hint}")
    value = values[key]
    if value is not None and is_secret(settings, key, value):
        return SettingValue(key, None, origin.source_of(key), hidden=True)
    return SettingValue(key, value, origin.source_of(key))


def is_secret(settings: BaseModel, key: str, value: Any) -> bool:
    """Whether ``key`` must not be told: a secret field, a name that says it is one, or a
    value with a URL's password in it."""
    if any(_SECRET_NAME.search(part) for part in key.split(".")):
        return True
    if isinstance(_attribute(settings, key), SecretStr):
        return True
    return bool(_URL_PASSWORD.search(json.dumps(value)))


def _attribute(settings: BaseModel, key: str) -> Any:
    found: Any = settings
    for part in key.split("."):
        found = found.get(part) if isinstance(found, dict) else getattr(found, part, None)
    return found


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to values: a table (``log``, ``storages``) both whole and by its keys."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat[f"{prefix}{key}"] = value
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
    return flat
