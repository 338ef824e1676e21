"""The running checksums give the sums every other tool prints for the same bytes."""

from __future__ import annotations

import hashlib
import zlib

from hypothesis import given
from hypothesis import strategies as st

from ferry.domain.options import Checksum
from ferry.engine.checksums import new_checksum

# Lengths around adler32's own block (5,552 bytes) and the vector code's strides.
_LENGTHS = st.one_of(st.integers(0, 64), st.sampled_from([5551, 5552, 5553, 65_536, 70_001]))


@given(data=st.data(), length=_LENGTHS)
def test_adler32_of_blocks_is_zlibs_of_the_whole(data: st.DataObject, length: int) -> None:
    payload = data.draw(st.binary(min_size=length, max_size=length))
    cuts = sorted(data.draw(st.lists(st.integers(0, length), max_size=4)))
    running = new_checksum(Checksum.ADLER32)
    assert running is not None
    for start, end in zip([0, *cuts], [*cuts, length], strict=True):
        running.update(memoryview(payload)[start:end])
    assert running.hexdigest() == f"{zlib.adler32(payload):08x}"


def test_adler32_of_nothing_is_one() -> None:
    running = new_checksum(Checksum.ADLER32)
    assert running is not None
    assert running.hexdigest() == "00000001"


def test_digests_of_hashlib_algorithms() -> None:
    for algorithm in (Checksum.MD5, Checksum.SHA256):
        running = new_checksum(algorithm)
        assert running is not None
        running.update(b"ferry")
        assert running.hexdigest() == hashlib.new(algorithm.value, b"ferry").hexdigest()
    assert new_checksum(Checksum.NONE) is None
