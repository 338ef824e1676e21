"""A page of outcomes is written without its models (``server.outcome_pages``): the document
must be the one ``schemas.Outcomes`` describes and would have written, field for field."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ferry.api.schemas import AttemptPublic, ObjectOutcome, Outcomes
from ferry.domain.locations import parse_location
from ferry.domain.states import TaskState
from ferry.server.outcome_pages import outcomes_page
from ferry.store.abc import Attempt, RunObject

names = st.text(st.characters(codec="utf-8", exclude_characters="\0/:"), min_size=1, max_size=12)
words = st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
counts = st.integers(min_value=0, max_value=2**63 - 1)
attempts = st.builds(
    Attempt,
    number=st.integers(min_value=1, max_value=100),
    agent=st.none() | names,
    started_at=st.none() | times,
    finished_at=times,
    bytes=counts,
    error_class=words,
    error=words,
    state=st.sampled_from([None, "DONE", "SKIPPED", "FAILED", "CANCELED", "LOST", "STOPPED"]),
)
objects = st.builds(
    RunObject,
    number=counts,
    task_id=counts,
    state=st.sampled_from(TaskState),
    source=names.map(lambda name: parse_location(f"local:src/{name}")),
    destination=names.map(lambda name: parse_location(f"s3:dst/{name}")),
    size=st.none() | counts,
    bytes_done=counts,
    checksum=st.none() | st.text("0123456789abcdef:", max_size=20),
    attempts=st.integers(min_value=0, max_value=100),
    error_class=words,
    error=words,
    agent=st.none() | names,
    history=st.lists(attempts, max_size=3),
)


def as_the_model_writes_it(
    transfer_id: str, status: str, page: list[RunObject], limit: int
) -> bytes:
    outcomes = [
        ObjectOutcome(
            id=obj.number,
            source=str(obj.source),
            destination=str(obj.destination),
            size=obj.size,
            bytes=obj.bytes_done,
            checksum=obj.checksum,
            status=obj.state.value,
            attempts=obj.attempts,
            error_class=obj.error_class,
            error=obj.error,
            agent=obj.agent,
            history=[
                AttemptPublic(
                    number=a.number,
                    state=a.state,
                    agent=a.agent,
                    started_at=a.started_at,
                    finished_at=a.finished_at,
                    bytes=a.bytes,
                    error_class=a.error_class,
                    error=a.error,
                )
                for a in obj.history
            ],
        )
        for obj in page
    ]
    next_cursor = str(page[-1].number) if len(page) == limit else None
    model = Outcomes(
        transfer=transfer_id,
        run=3,
        status=status,
        started=True,
        objects=outcomes,
        next_cursor=next_cursor,
    )
    return model.model_dump_json().encode()


@given(page=st.lists(objects, max_size=5), limit=st.integers(min_value=1, max_value=6))
def test_a_page_is_the_document_its_model_writes(page: list[RunObject], limit: int) -> None:
    page = page[:limit]
    body = outcomes_page("t-1", 3, "RUNNING", page, limit)
    assert orjson.loads(body) == orjson.loads(as_the_model_writes_it("t-1", "RUNNING", page, limit))
    assert Outcomes.model_validate_json(body).model_dump_json().encode() == body


def test_a_full_page_names_its_last_object_as_the_next_cursor() -> None:
    stamp = datetime(2026, 12, 7, 7, 0, 1, 250000, tzinfo=UTC)
    tried = Attempt(1, "agent-1", None, stamp, 4096, "Permanent", "no such file", "FAILED")
    obj = RunObject(
        41, 7, TaskState.FAILED, parse_location("local:a"), parse_location("local:b"),
        4096, 0, None, 1, "Permanent", "no such file", None, [tried],
    )  # fmt: skip
    full = orjson.loads(outcomes_page("t-1", 1, "COMPLETED_WITH_ERRORS", [obj], 1))
    assert full["next_cursor"] == "41"
    assert full["objects"][0]["history"][0]["finished_at"] == "2026-12-07T07:00:01.250000Z"
    assert orjson.loads(outcomes_page("t-1", 1, "COMPLETED", [obj], 2))["next_cursor"] is None
