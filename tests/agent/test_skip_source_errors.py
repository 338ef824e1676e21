"""``skip_source_errors`` on the agent, which alone knows which side an error came from: a
source not found ends SKIPPED with the reason, in a chunk and as a single task; without the
flag it fails as before. (Permission denied is denied for real in tests/e2e.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ferry.api.protocol import LeasedTaskPublic, ReportedState
from ferry.domain.options import Checksum, Overwrite

from .test_runner_chunks import ChunkServer, carrier, files, run_until_ended


def single(n: int, source: str, *, skip: bool) -> LeasedTaskPublic:
    return LeasedTaskPublic(
        id=n,
        lease=f"lease-{n}",
        transfer="t1",
        run=1,
        source=source,
        destination=f"disk:dst/single{n}",
        size=1,
        attempt=1,
        checksum=Checksum.ADLER32,
        overwrite=Overwrite.NEVER,
        skip_source_errors=skip,
    )


async def test_a_missing_source_is_skipped_with_the_reason_only_when_asked(
    tmp_path: Path,
) -> None:
    listed = files(tmp_path, 6)
    (tmp_path / "src" / listed[2][0]).unlink()  # gone between the listing and the copy
    skipping = dataclasses.replace(carrier(7, listed), skip_source_errors=True)
    failing = carrier(8, listed)
    tasks = [
        skipping,
        failing,
        single(9, "disk:src/nothing", skip=True),
        single(10, "disk:src/nothing", skip=False),
    ]
    failing.destination = "disk:dst2"
    server = ChunkServer(tasks, {"disk": f"file://{tmp_path}"})
    await run_until_ended(server)

    skipped = {row[0]: row for r in server.reports_of(7) for row in r.results}
    assert skipped[2][1] is ReportedState.SKIPPED
    assert skipped[2][5] == f"not found: disk:src/{listed[2][0]}"
    assert {offset: row[1] for offset, row in skipped.items() if offset != 2} == dict.fromkeys(
        [0, 1, 3, 4, 5], ReportedState.DONE
    )
    assert server.rows_of(8)[2] is ReportedState.FAILED
    reports = {r.task: r for r in server.tasks()}
    assert (reports[9].state, reports[9].error) == (
        ReportedState.SKIPPED,
        "not found: disk:src/nothing",
    )
    assert reports[10].state is ReportedState.FAILED
