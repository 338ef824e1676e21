"""The daemons' configuration file: TOML, one section per daemon (``[server]``, ``[agent]``),
below the command line and ``FERRY_*`` variables in priority. Every key is checked at start:
an unknown key or a bad value stops the daemon with a message naming it."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

from ferry.errors import ConfigError

SECTIONS = ("server", "agent")
S = TypeVar("S", bound=BaseSettings)


def read_section(path: Path | None, section: str) -> dict[str, Any]:
    """The ``[section]`` table of the file at ``path`` (empty without a file)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if unknown := sorted(set(data) - set(SECTIONS)):
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]: use {', '.join(SECTIONS)}")
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {section} must be a table ([{section}])")
    return table


class _FileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def load_settings(kind: type[S], *, path: Path | None, section: str, given: dict[str, Any]) -> S:
    """Settings of class ``kind`` from the command line's ``given`` values (``None``: not given),
    then the environment, then ``[section]`` of the file at ``path``, then defaults."""
    values = read_section(path, section)
    overrides = {name: value for name, value in given.items() if value is not None}

    class FromFile(kind):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _FileSource(settings_cls, values))

    FromFile.__name__ = kind.__name__
    try:
        return kind.model_validate(FromFile(**overrides).model_dump())
    except ValidationError as exc:
        raise ConfigError(_describe(exc, kind, path, section)) from None
    except SettingsError as exc:  # an environment variable that is not valid JSON, say
        raise ConfigError(f"{section}: {exc}") from None


def _describe(exc: ValidationError, cls: type[BaseModel], path: Path | None, section: str) -> str:
    """One line per bad key: where it is, and what is wrong (with a guess for a misspelling)."""
    where = f"{path}: " if path else ""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            fields = _fields_at(cls, error["loc"][:-1])
            guess = difflib.get_close_matches(str(error["loc"][-1]), fields, 1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            lines.append(f"{where}{section}.{key}: unknown key{hint}")
        else:
            lines.append(f"{where}{section}{'.' if key else ''}{key}: {error['msg']}")
    return "; ".join(lines)


def _fields_at(model: type[BaseModel], path: tuple[int | str, ...]) -> list[str]:
    """The field names of the (nested) model at ``path``, for a misspelling's guess."""
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
