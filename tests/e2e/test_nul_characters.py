"""A NUL character in a request's path or query is refused with a problem document, before any
database sees it: PostgreSQL's text cannot hold one, and the query failed with a 500."""

from __future__ import annotations

from e2e_support import ServerProcess

TARGETS = [
    ("GET", "/api/v1/transfers?label=a%00b"),
    ("GET", "/api/v1/transfers?submitter=%00"),
    ("GET", "/api/v1/transfers?scope=x%00"),
    ("GET", "/api/v1/transfers/abcdef%00"),
    ("GET", "/api/v1/transfers/abcdef%00/outcomes"),
    ("POST", "/api/v1/transfers/abcdef%00/cancel"),
    ("GET", "/api/v1/storages/lo%00cal"),
    ("GET", "/api/v1/audit?user=%00"),
    ("GET", "/transfers?label=%00"),  # the dashboard's list
]


def test_a_nul_in_the_path_or_query_is_a_bad_request(start_server, postgres_url) -> None:
    server: ServerProcess = start_server("--db", postgres_url, "--agents", "0")
    for method, target in TARGETS:
        answer = server.api(method, target)
        assert answer.status_code == 400, (target, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", target
        assert "NUL" in answer.json()["detail"], target
    assert server.api("GET", "/api/v1/transfers?label=a").status_code == 200  # the rest is kept
