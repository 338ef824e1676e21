"""docs/grafana-dashboard.json asks only for metrics the server exports, and shows them all."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
METRIC = re.compile(r"\bferry_[a-z_]+\b")


def queries(node: Any) -> list[str]:
    """Every PromQL text of the dashboard: panel targets and template variable queries."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        return found + [q for v in node.values() for q in queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


async def test_every_metric_of_the_dashboard_is_exported_and_every_export_shown(api) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    asked = {name for query in queries(dashboard) for name in METRIC.findall(query)}
    text = (await api.anonymous.get("/metrics")).text
    # The client's *_created series (when a series began) are no metric of ours to chart.
    families = {
        f.name: f.type
        for f in text_string_to_metric_families(text)
        if not f.name.endswith("_created")
    }
    exported = {name + end for name, kind in families.items() for end in SUFFIXES[kind]}
    assert asked
    assert asked <= exported, sorted(asked - exported)
    shown = {name for name in families if any(n.startswith(name) for n in asked)}
    assert shown == set(families)
    assert all(panel["targets"] for panel in dashboard["panels"])
