"""Write the figures of a ``make chaos`` run (the JSON lines chaos_figures.record appended) into
docs/reliability.md, between ``<!-- chaos:begin -->`` and ``<!-- chaos:end -->``: one row per
scenario with what holds (the first paragraph of the docstring of the test that recorded it),
its figures in round 1 and round 2, and the date.

    python tests/chaos/write_reliability.py FIGURES [DOC]
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    lines = [json.loads(line) for line in Path(argv[1]).read_text().splitlines() if line]
    doc = Path(argv[2]) if len(argv) == 3 else DOC
    doc.write_text(replace_section(doc.read_text(), table(lines)))
    print(f"{doc}: {len({line['scenario'] for line in lines})} scenarios")
    return 0


def replace_section(text: str, section: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{BEGIN} … {END} not found in order")
    return text[: start + len(BEGIN)] + "\n" + section + text[end:]


def table(lines: list[dict[str, Any]]) -> str:
    """The scenarios in the order they first ran; a round's last record of each wins."""
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        row = rows.setdefault(line["scenario"], {"test": line.get("test"), "rounds": {}})
        row["rounds"][line["round"]] = line["figures"]
        row["date"] = line["at"][:10]
    out = [
        "| scenario | test | what holds | round 1 | round 2 | date |",
        "|---|---|---|---|---|---|",
    ]
    for scenario, row in rows.items():
        test = row["test"] or ""
        cells = [
            scenario,
            f"`{test.split('::')[0]}`" if test else "—",
            what_holds(test),
            figures(row["rounds"].get(1)),
            figures(row["rounds"].get(2)),
            row["date"],
        ]
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(out) + "\n"


def figures(found: dict[str, Any] | None) -> str:
    if found is None:
        return "—"
    return "; ".join(figure(name, value) for name, value in found.items())


def figure(name: str, value: Any) -> str:
    """``to_completed_s=12.34`` reads "to completed 12.3 s"; ``lost=3`` reads "lost 3"."""
    unit = " s" if name.endswith("_s") else ""
    return f"{name.removesuffix('_s').replace('_', ' ')} {number(value)}{unit}"


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def what_holds(test: str) -> str:
    """The first paragraph of the test function's docstring (else its module's)."""
    if "::" not in test:
        return "—"
    path, name = test.split("::", 1)
    name = re.sub(r"\[.*\]$", "", name.split("::")[-1])
    module = ast.parse((ROOT / path).read_text())
    found = next(
        (
            node
            for node in ast.walk(module)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        ),
        None,
    )
    text = (found and ast.get_docstring(found)) or ast.get_docstring(module) or "—"
    return " ".join(text.split("\n\n")[0].split())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
