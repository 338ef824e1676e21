"""The OpenAPI document says what each route answers, errors included.

FastAPI documents a route's success and, for a route with parameters, a 422 in its own shape.
Ferry's errors are problem+json (``problems.py``), and which of them a route can return follows
from what the document already says about it: a route that takes a token answers 401 and 403,
one with a path parameter 404 (an id that names nothing), one with parameters or a body 422,
one with a body 400 (not JSON) and 413 (too large), one with a path or query parameter 400 (a
NUL character in it, ``limits.py``), one that needs a capability 403, and every
route 503 (the database cannot serve it, or the server is stopping). What does not follow from
the route's shape, a 409 for instance, the route declares itself (``responses={409: …}``), and
its error body is filled in here like the others.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ferry.api.schemas import Problem, ProblemField
from ferry.server.limits import NO_NUL
from ferry.server.problems import PROBLEM_JSON

WHY = {
    400: "The body is not JSON, or the path or query holds a NUL character",
    401: "No token, or one that is unknown, expired or revoked",
    403: "The token's role, scopes or address do not allow this",
    404: "Nothing of that name or id (or nothing the caller may see)",
    409: "The request conflicts with the current state",
    413: "The body is larger than the server takes",
    422: "The request is invalid: the detail and errors say where",
    503: "The database cannot serve requests right now, or the server is stopping",
}
CAPABILITY_HEADER = "x-ferry-capability"
_SCHEMAS = "#/components/schemas/"


def install(app: FastAPI) -> None:
    """Make ``app`` serve the document with every route's error answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)  # built and kept by FastAPI
            lift_definitions(document)
            describe_errors(document)
            forbid_nul(document)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def forbid_nul(document: dict[str, Any]) -> None:
    """Every string in a path or query says it holds no NUL character (a request with one is
    answered 400 before any route, ``limits.py``), unless it has a pattern of its own."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query"):
                    _no_nul(parameter.get("schema", {}))


def _no_nul(schema: dict[str, Any]) -> None:
    for choice in schema.get("anyOf", []):
        _no_nul(choice)
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = NO_NUL
    if schema.get("type") == "array":
        _no_nul(schema.get("items", {}))


def lift_definitions(document: dict[str, Any]) -> None:
    """A body schema that a route writes itself (for a body it reads itself, such as an
    agent's report) brings the records it refers to as ``$defs``: they join the document's
    components, where its references point."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schema = media.get("schema", {})
                if "$defs" in schema:  # the route's own dictionary, shared by every app: kept
                    schemas.update(schema["$defs"])
                    media["schema"] = {k: v for k, v in schema.items() if k != "$defs"}


def describe_errors(document: dict[str, Any]) -> None:
    """Give every operation of ``document`` the error answers its shape implies, each with
    the Problem body; the validation schemas FastAPI adds give way to Problem."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["ProblemField"] = ProblemField.model_json_schema(ref_template=_SCHEMAS + "{model}")
    problem = Problem.model_json_schema(ref_template=_SCHEMAS + "{model}")
    problem.pop("$defs", None)
    schemas["Problem"] = problem
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in sorted(errors_of(operation)):
                responses[str(status)] = _error_answer(status, responses.get(str(status)))


def errors_of(operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from its shape and its own declarations."""
    where = {parameter["in"] for parameter in operation.get("parameters", [])}
    headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
    errors = {503} | {int(s) for s in operation.get("responses", {}) if s.isdigit() and s >= "4"}
    if operation.get("security"):
        errors |= {401, 403}
    if CAPABILITY_HEADER in headers:
        errors.add(403)
    if "path" in where:
        errors.add(404)
    if where:
        errors.add(422)
    if where & {"path", "query"}:
        errors.add(400)
    if "requestBody" in operation:
        errors |= {400, 413, 422}
    return errors


def _error_answer(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    answer = dict(declared or {})
    content = answer.get("content", {})
    if not content or "HTTPValidationError" in str(content):
        answer["content"] = {PROBLEM_JSON: {"schema": {"$ref": _SCHEMAS + "Problem"}}}
    if not answer.get("description") or answer["description"] in ("Validation Error",):
        answer["description"] = WHY.get(status, "An error")
    if status == 401:
        answer["headers"] = {
            "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
        }
    return answer
