"""docs/architecture.md names the code of each hop as ``src/ferry/PATH.py:NAME``; a reader
who follows one lands on it: every file exists and defines the function, the method (in its
class) or the class named, and every link points to the file it names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
REFERENCE = re.compile(r"`(src/ferry/[\w/]+\.py):([\w.]+)`")


def _defines(source: str, name: str) -> bool:
    """Whether ``source`` defines ``name``: a function or class at its top, or ``Class.method``
    inside that class."""
    scope: list[ast.stmt] = ast.parse(source).body
    for part in name.split("."):
        found = [
            node
            for node in scope
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == part
        ]
        if not found:
            return False
        scope = found[0].body
    return True


def test_every_function_the_map_names_is_where_it_says() -> None:
    text = DOC.read_text()
    references = REFERENCE.findall(text)
    assert len(references) >= 40  # the walk names every hop
    missing = [
        f"{path}:{name}"
        for path, name in references
        if not (ROOT / path).is_file() or not _defines((ROOT / path).read_text(), name)
    ]
    assert missing == []


def test_every_link_of_the_map_points_to_a_file_that_exists() -> None:
    text = DOC.read_text()
    targets = re.findall(r"\]\((\.\./[^)#]+|[\w-]+\.md)\)", text)
    targets += re.findall(r"^\[\w+\]: (\S+)$", text, re.M)
    assert targets
    absent = [t for t in targets if not (DOC.parent / t).resolve().exists()]
    assert absent == []
