"""Errors form one tree, drawn in ``ferry.errors``'s docstring: every exception class Ferry
defines is a ``FerryError`` and is drawn there, but the engine's two signals inside a copy,
which the docstring names apart and which never leave ``copy_object``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import ferry
from ferry import errors
from ferry.errors import FerryError

ENGINE_SIGNALS = {"SourceChanged", "DestinationError"}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(ferry.__path__, "ferry."):
        # The command's entry runs it; a migration runs inside alembic's context only.
        if module_info.name == "ferry.__main__" or ".migrations" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[name] = value
    return found


def test_every_error_is_a_ferry_error_drawn_in_the_tree() -> None:
    classes = _exception_classes()
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__ or "")) | {"FerryError"}

    outside = {name for name, kind in classes.items() if not issubclass(kind, FerryError)}
    assert outside == ENGINE_SIGNALS
    assert all(name in (errors.__doc__ or "") for name in ENGINE_SIGNALS)
    undrawn = {name for name in classes if name not in drawn | ENGINE_SIGNALS}
    assert undrawn == set()
    assert drawn - set(classes) == set()  # nothing drawn that is gone


def test_the_drawing_nests_each_error_under_its_parent() -> None:
    lines = [line for line in (errors.__doc__ or "").splitlines() if "── " in line]
    parents: dict[int, str] = {}
    for line in lines:
        depth = line.index("── ") // 4
        name = line.split("── ")[1].split()[0]
        parents[depth] = name
        parent = parents.get(depth - 1, "FerryError")
        assert getattr(errors, parent) in getattr(errors, name).__mro__, (name, parent)
