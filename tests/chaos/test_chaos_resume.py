"""Issue 23's acceptance for resume, at full size: a 1 GiB copy whose agent is killed (SIGKILL)
at 60 % is resumed by the next attempt, which moves at most 45 % of the bytes by its agent's
byte counter, from local, SFTP and HTTP sources, with the file's sha256 right; a ``.part``
tampered with before the retry is caught and the copy starts from 0. The agents keep their
default threshold (64 MiB; checkpoints every 16 MiB). The same scenarios on 32 MiB files run in
``make test`` (tests/e2e/test_resume.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_figures import record
from resume_support import (
    SOURCES,
    World,
    flip_a_byte,
    interrupt,
    leftovers,
    random_file,
    retry,
    scenario,
    sha256_of,
    storage_world,
)

from ferry.engine.resume import RESUME_MIN_BYTES

SIZE = 1024 * 1024 * 1024
BANDWIDTH = "100M"  # 60 % to the end takes 4 s at least: time to see the 60 % and kill

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="session")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """1 GiB of random bytes, made once for the session (every test links it in place)."""
    path = tmp_path_factory.mktemp("original-1g") / "big.bin"
    return path, random_file(path, SIZE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with storage_world(tmp_path_factory.mktemp("storages")) as started:
        yield started


@pytest.mark.parametrize("kind", SOURCES)
def test_a_1_gib_copy_killed_at_60_percent_moves_at_most_45_percent_again(
    daemons, world, original, kind
):
    path, digest = original
    run = scenario(daemons, world, path, kind, RESUME_MIN_BYTES)
    interrupted = interrupt(run, SIZE, BANDWIDTH)
    started = time.monotonic()

    done, second, moved = retry(run, interrupted["id"])

    assert done["status"] == "COMPLETED", done
    assert sha256_of(run.landed / "big.bin") == digest
    assert leftovers(run.landed) == []
    assert 0 < moved <= 0.45 * SIZE, (moved, interrupted)
    assert "resuming at byte" in second.log.read_text()
    record(
        f"a 1 GiB copy from {kind} killed at 60 %, resumed",
        checkpoint=interrupted["checkpoint"],
        moved_by_the_retry=moved,
        retry_to_completed_s=time.monotonic() - started,
    )


def test_a_1_gib_part_tampered_with_is_copied_again_from_0(daemons, world, original):
    path, digest = original
    run = scenario(daemons, world, path, "file", RESUME_MIN_BYTES)
    interrupted = interrupt(run, SIZE, BANDWIDTH)
    [part] = run.parts.glob(".big.bin.ferry-*-1.part")
    flip_a_byte(part, interrupted["checkpoint"] // 2)

    done, second, moved = retry(run, interrupted["id"])

    assert done["status"] == "COMPLETED", done
    assert sha256_of(run.landed / "big.bin") == digest
    assert moved == SIZE
    assert leftovers(run.landed) == []
    assert "was not kept (the checksum of its first bytes" in second.log.read_text()
