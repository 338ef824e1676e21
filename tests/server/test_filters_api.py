"""Filters and skip_source_errors through the HTTP API in-process: validated as problem+json,
kept in the transfer's options, and absent from the spec (and its hash) when not given."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferry.domain.locations import parse_location
from ferry.domain.transfers import TransferKind, TransferOptions, TransferSpec
from ferry.store.abc import NewTransfer
from ferry.store.sql_transfers import spec_hash

PROBLEM = "application/problem+json"


def tree_body(**options: object) -> dict[str, object]:
    return {"sources": ["local:in"], "destination": "local:out", "kind": "tree", "options": options}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (tree_body(filters={"rules": ["+ a[bc"]}), "bad glob 'a[bc': a '[' is not closed"),
        (tree_body(filters={"rules": ["+ {a,b"]}), "a '{' is not closed"),
        (tree_body(filters={"rules": ["* x"]}), "write '+ GLOB' or '- GLOB'"),
        (tree_body(filters={"min_size": 10, "max_size": 9}), "min_size 10 is above max_size 9"),
        (tree_body(filters={"min_size": -1}), "greater than or equal to 0"),
        (tree_body(filters={"max_age": "yesterday"}), "bad age 'yesterday'"),
        (tree_body(filters={"max_age": "9" * 40 + "d"}), "before the year 1"),
        (tree_body(filters={"rules": ["+ " + "{" * 2000 + "}" * 2000]}), "more than 32 '{'"),
        (tree_body(filters={"min_age": "2d", "max_age": "1d"}), "older than max_age"),
        (tree_body(skip_source_errors="yes"), "valid boolean"),
        (
            {**tree_body(filters={"rules": ["- *.tmp"]}), "kind": "file"},
            "filters apply to tree transfers only",
        ),
    ],
)
async def test_bad_filters_are_problems_and_write_nothing(api, body, needle) -> None:
    response = await api.client.post("/api/v1/transfers", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert needle in response.json()["detail"]
    assert (await api.client.get("/api/v1/transfers")).json()["items"] == []


async def test_a_push_takes_no_filters(api) -> None:
    body = {
        "destination": "local:out",
        "objects": [{"name": "a"}],
        "options": {"filters": {"rules": ["- *"]}},
    }
    response = await api.client.post("/api/v1/transfers/push", json=body)
    assert response.status_code == 422
    assert "not to a push or a pull" in response.json()["detail"]


async def test_filters_are_kept_in_order_in_the_transfers_options(api) -> None:
    (api.root / "in").mkdir()
    filters = {"rules": ["+ *.csv", "- cache/", "- **"], "min_size": 1, "max_age": "6h"}
    created = await api.client.post(
        "/api/v1/transfers", json=tree_body(filters=filters, skip_source_errors=True)
    )
    assert created.status_code == 201, created.text
    options = (await api.client.get(f"/api/v1/transfers/{created.json()['id']}")).json()["options"]
    assert options["filters"] == filters
    assert options["skip_source_errors"] is True
    assert created.json()["objects"]["filtered"] == 0


async def test_a_transfer_without_filters_keeps_its_spec_and_hash() -> None:
    """The hash of a spec stored before filters existed (computed by the previous release)."""
    options = TransferOptions(labels=("a",))
    spec = TransferSpec(
        TransferKind.TREE, (parse_location("local:in"),), parse_location("local:out"), options
    )
    new = NewTransfer(
        "default", "admin", spec, {"kind": "direct"}, datetime(2026, 12, 7, tzinfo=UTC)
    )
    assert "filters" not in spec.to_json()["options"]
    assert "skip_source_errors" not in spec.to_json()["options"]
    assert spec_hash(new, spec.to_json()) == (
        "bff726d79c6ed89c5432a7ae59765e756feba3be7404d083ab5b62e2b918a8f9"
    )
