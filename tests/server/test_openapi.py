"""The OpenAPI document lists each route's error answers; unsupported methods get 405."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


@pytest.fixture
async def document(api):
    return (await api.anonymous.get("/api/v1/openapi.json")).json()


def answers(document, method: str, path: str) -> dict:
    return document["paths"][f"/api/v1{path}"][method]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        # 400 for a route with path or query parameters: a NUL character in one
        ("get", "/transfers", {400, 401, 403, 422, 503}),
        ("post", "/transfers", {400, 401, 403, 409, 413, 422, 503}),
        ("get", "/transfers/{transfer_id}", {400, 401, 403, 404, 409, 422, 503}),  # 409: short id
        ("post", "/transfers/{transfer_id}/cancel", {400, 401, 403, 404, 409, 422, 503}),
        ("put", "/storages/{name}", {400, 401, 403, 404, 409, 413, 422, 503}),
        ("delete", "/users/{name}", {400, 401, 403, 404, 409, 422, 503}),
        ("get", "/whoami", {401, 403, 503}),
        ("post", "/agents/{agent_id}/report", {400, 401, 403, 404, 413, 422, 503}),
        ("post", "/transfers/{transfer_id}/close", {400, 403, 404, 422, 503}),
    ],
)
async def test_each_route_lists_the_problems_it_answers(document, method, path, statuses) -> None:
    responses = answers(document, method, path)
    errors = {int(status) for status in responses if status >= "4"}
    assert errors == statuses
    for status in errors:
        content = responses[str(status)]["content"]
        assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    if 401 in errors:
        assert "WWW-Authenticate" in responses["401"]["headers"]


async def test_routes_without_a_token_answer_no_401(document) -> None:
    assert "401" not in document["paths"]["/healthz"]["get"]["responses"]
    assert "401" not in answers(document, "post", "/transfers/{transfer_id}/close")


async def test_the_problem_schema_is_documented_and_fastapis_is_gone(document) -> None:
    schemas = document["components"]["schemas"]
    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["required"])
    assert "HTTPValidationError" not in schemas
    assert "HTTPValidationError" not in str(document["paths"])


async def test_every_path_parameter_is_listed(document) -> None:
    for path, operations in document["paths"].items():
        named = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in operations.values():
            listed = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert listed == named, path


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/api/v1/transfers", "GET, POST"),
        ("DELETE", "/api/v1/transfers", "GET, POST"),
        ("TRACE", "/healthz", "GET"),
        ("PATCH", "/api/v1/storages/s3", "DELETE, GET, PUT"),
        ("TRACE", "/api/v1/transfers/abc/data/a/b.txt", "GET, PUT"),
        ("OPTIONS", "/api/v1/transfers/pull", "POST"),
    ],
)
async def test_an_unsupported_method_is_405_with_allow(api, method, path, allowed) -> None:
    response = await api.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == f"{method} is not one of {allowed}"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v1/channels/a/b", {"max_active": 2**70}),
        ("PUT", "/api/v1/channels/a/b", {"max_active": False}),
        ("PUT", "/api/v1/scopes/s", {"weight": True}),
        (
            "POST",
            "/api/v1/transfers/push",
            {"destination": "local:", "objects": [{"name": "a", "size": 2**64}]},
        ),
        (
            "POST",
            "/api/v1/transfers/push",
            {"destination": "local:", "objects": [{"name": "a", "mtime": False}]},
        ),
        ("GET", "/api/v1/transfers/x/outcomes?run=16663437821379082240", None),
    ],
)
async def test_what_the_schema_refuses_is_refused(api, method, path, body) -> None:
    """Found by generated requests: a number too large for the database was a 500 there, and
    a boolean passed for a number."""
    response = await api.client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_every_string_in_a_path_or_query_says_it_holds_no_nul(document) -> None:
    """A NUL in a path or query is answered 400 before any route: the document says so, so
    that a client generated from it never sends one."""

    def strings(schema):
        for choice in schema.get("anyOf", []):
            yield from strings(choice)
        if schema.get("type") == "string" and "enum" not in schema:
            yield schema
        if schema.get("type") == "array":
            yield from strings(schema.get("items", {}))

    checked = 0
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("path", "query"):
                    continue
                for schema in strings(parameter["schema"]):
                    checked += 1
                    assert "\x00" not in schema.get("pattern", "x"), parameter
                    assert schema.get("pattern"), parameter
    assert checked > 20
