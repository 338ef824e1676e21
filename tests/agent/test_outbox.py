"""The outbox sends a chunk still copying at most once a report interval: its copy thread adds
rows faster than a report loop posts them, and posting whatever came since the last post
made one chunk of 500 objects into hundreds of reports."""

from __future__ import annotations

from ferry.agent.held import HeldChunk
from ferry.agent.outbox import REPORT_EVERY_S, Outbox
from ferry.api.protocol import PROTOCOL, LeasedChunk, LeasedTaskPublic, ReportedState
from ferry.domain.options import Checksum, Overwrite


def chunk(objects: int) -> HeldChunk:
    listed = [(f"f{n}", 10) for n in range(objects)]
    return HeldChunk.from_lease(
        LeasedTaskPublic(
            id=7,
            lease="lease-7",
            transfer="t1",
            run=1,
            source="disk:src",
            destination="disk:dst",
            size=10 * objects,
            attempt=1,
            checksum=Checksum.ADLER32,
            overwrite=Overwrite.NEVER,
            chunk=LeasedChunk(first=1, objects=listed),
        )
    )


def copied(held: HeldChunk, offsets: range) -> None:
    for offset in offsets:
        held.add_row((offset, ReportedState.DONE, 10, "adler32:00000001", None, None, False))


def reported(outbox: Outbox, now: float) -> list[tuple[list[int], bool]]:
    """The offsets and ``ended`` of each chunk report ``outbox`` sends at ``now``, accepted."""
    sent = []
    while (body := outbox.next_body(PROTOCOL, now)) is not None:
        sent += [([row[0] for row in r.results], r.ended) for _, r in body.chunks]
        outbox.accepted(body, now)
    return sent


def test_a_copying_chunk_is_reported_at_most_once_a_report_interval() -> None:
    outbox, held = Outbox(), chunk(100)
    outbox.hold(held)
    held.partial_at = 10.0 + REPORT_EVERY_S  # its copy started at 10.0
    copied(held, range(0, 30))

    assert reported(outbox, 10.1) == []  # younger than an interval: its rows wait
    assert reported(outbox, 10.25) == [(list(range(30)), False)]
    copied(held, range(30, 60))
    assert reported(outbox, 10.3) == []  # a partial report went 0.05 s ago
    assert reported(outbox, 10.25 + REPORT_EVERY_S) == [(list(range(30, 60)), False)]


def test_a_chunk_that_ended_is_reported_at_once_whole() -> None:
    outbox, held = Outbox(), chunk(100)
    outbox.hold(held)
    held.partial_at = 10.0 + REPORT_EVERY_S
    copied(held, range(100))
    held.done = True

    assert reported(outbox, 10.01) == [(list(range(100)), True)]
    assert outbox.chunks == {}
