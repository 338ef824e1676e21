"""Unpacking archives into a destination folder: all members or none, nothing outside it."""

from __future__ import annotations

import io
import struct
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from ferry.domain.options import Checksum, Overwrite
from ferry.engine.copy import CopyRequest, CopyState, copy_object
from ferry.errors import PermanentError

MEMBERS = {
    "readme.txt": b"hello",
    "data/é table.csv": b"a,b\n1,2\n",
    "data/deep/x.bin": bytes(range(256)),
}


def unzip_request(src, dst, name: str) -> CopyRequest:
    return CopyRequest(src, name, dst, f"out/{name}", unzip=True, checksum=Checksum.ADLER32)


def files_under(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write_zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)


def write_tar(path, members: dict[str, bytes], mode: str = "w:gz") -> None:
    with tarfile.open(path, mode) as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name", ["bundle.zip", "bundle.tar.gz", "bundle.tar"])
def test_an_archive_unpacks_into_the_destination_folder(src, dst, src_root, dst_root, name) -> None:
    if name.endswith(".zip"):
        write_zip(src_root / name, MEMBERS)
    else:
        write_tar(src_root / name, MEMBERS, "w:gz" if name.endswith("gz") else "w")
    outcome = copy_object(unzip_request(src, dst, name))
    assert outcome.state is CopyState.DONE
    assert outcome.bytes == sum(len(d) for d in MEMBERS.values())
    assert outcome.checksum is not None
    assert outcome.checksum.startswith("adler32:")
    assert files_under(dst_root / "out") == MEMBERS


@pytest.mark.parametrize("evil", ["../escape.txt", "/etc/cron.d/evil", "data/../../escape.txt"])
def test_a_member_escaping_the_folder_refuses_the_whole_archive(
    src, dst, src_root, dst_root, evil
) -> None:
    write_zip(src_root / "slip.zip", {**MEMBERS, evil: b"owned"})
    with pytest.raises(PermanentError, match="outside the destination folder: archive refused"):
        copy_object(unzip_request(src, dst, "slip.zip"))
    assert files_under(dst_root) == {}
    assert not (src_root.parent / "escape.txt").exists()


def test_a_tar_with_a_link_is_refused(src, dst, src_root, dst_root) -> None:
    with tarfile.open(src_root / "links.tar", "w") as bundle:
        link = tarfile.TarInfo("data/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        bundle.addfile(link)
    with pytest.raises(PermanentError, match="is a link or device: refused"):
        copy_object(unzip_request(src, dst, "links.tar"))
    assert files_under(dst_root) == {}


def test_something_that_is_not_an_archive_fails_clearly(src, dst, src_root, dst_root) -> None:
    (src_root / "fake.zip").write_bytes(b"this is not a zip at all")
    with pytest.raises(PermanentError, match="neither a zip nor a tar archive"):
        copy_object(unzip_request(src, dst, "fake.zip"))
    assert files_under(dst_root) == {}


def test_without_unzip_an_archive_is_copied_as_it_is(src, dst, src_root, dst_root) -> None:
    write_zip(src_root / "bundle.zip", MEMBERS)
    copy_object(CopyRequest(src, "bundle.zip", dst, "out/bundle.zip"))
    assert (dst_root / "out" / "bundle.zip").read_bytes() == (src_root / "bundle.zip").read_bytes()


@pytest.mark.parametrize(
    ("members", "needle"),
    [
        ([("p.txt", b"1"), ("q.txt", b"2"), ("p.txt", b"3")], "appears twice"),
        ([("y", b"file"), ("y/z", b"inside")], "both a file and a folder"),
    ],
)
def test_ambiguous_archives_are_refused_whole(
    src, dst, src_root, dst_root, members, needle
) -> None:
    with zipfile.ZipFile(src_root / "odd.zip", "w") as bundle, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile frowns on a duplicate: we mean it
        for name, data in members:
            bundle.writestr(name, data)
    with pytest.raises(PermanentError, match=needle):
        copy_object(unzip_request(src, dst, "odd.zip"))
    assert files_under(dst_root) == {}


def test_unzip_keeps_existing_files_when_overwrite_is_never(src, dst, src_root, dst_root) -> None:
    write_zip(src_root / "bundle.zip", MEMBERS)
    (dst_root / "out").mkdir()
    (dst_root / "out" / "readme.txt").write_bytes(b"USER FILE")
    outcome = copy_object(unzip_request(src, dst, "bundle.zip"))
    assert outcome.state is CopyState.DONE
    assert (dst_root / "out" / "readme.txt").read_bytes() == b"USER FILE"
    assert (dst_root / "out" / "data" / "deep" / "x.bin").read_bytes() == MEMBERS["data/deep/x.bin"]
    replaced = CopyRequest(
        src, "bundle.zip", dst, "out/bundle.zip", unzip=True, overwrite=Overwrite.ALWAYS
    )
    copy_object(replaced)
    assert (dst_root / "out" / "readme.txt").read_bytes() == b"hello"
    assert not any(p.name.startswith(".ferry-unzip") for p in (dst_root / "out").iterdir())


def zip_with_raw_name(path, raw: bytes, data: bytes, extra: bytes = b"") -> None:
    """A zip whose member name is ``raw``, bytes as written without the UTF-8 flag (as
    Info-ZIP's ``zip`` writes them on Linux): zipfile would flag any non-ASCII name it writes,
    so an ASCII name of the same length is written, then its bytes are replaced."""
    placeholder = b"Q" * len(raw)
    info = zipfile.ZipInfo(placeholder.decode())
    info.extra = extra
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(info, data)
    path.write_bytes(buffer.getvalue().replace(placeholder, raw))


def unicode_path_field(name: str, raw: bytes) -> bytes:
    """Info-ZIP's Unicode Path extra field: version 1, the CRC-32 of the raw name, the name."""
    body = struct.pack("<BI", 1, zlib.crc32(raw)) + name.encode()
    return struct.pack("<HH", 0x7075, len(body)) + body


def test_a_utf8_name_written_without_its_flag_keeps_its_letters(
    src, dst, src_root, dst_root
) -> None:
    name = "Données/été ü.txt"
    zip_with_raw_name(src_root / "names.zip", name.encode(), b"hi")
    copy_object(unzip_request(src, dst, "names.zip"))
    assert files_under(dst_root / "out") == {name: b"hi"}  # not 'Donn├⌐es/├⌐t├⌐ ├╝.txt'


def test_the_unicode_path_field_names_a_member_whose_bytes_are_not_utf8(
    src, dst, src_root, dst_root
) -> None:
    raw = "été.txt".encode("cp1252")  # a name written in a Windows code page
    extra = unicode_path_field("été.txt", raw)
    zip_with_raw_name(src_root / "windows.zip", raw, b"hi", extra)
    copy_object(unzip_request(src, dst, "windows.zip"))
    assert files_under(dst_root / "out") == {"été.txt": b"hi"}


def test_a_unicode_path_field_for_another_name_is_not_trusted(src, dst, src_root, dst_root) -> None:
    raw = b"plain.txt"
    stale = unicode_path_field("renamed.txt", b"an older name")  # its CRC is of another name
    zip_with_raw_name(src_root / "stale.zip", raw, b"hi", stale)
    copy_object(unzip_request(src, dst, "stale.zip"))
    assert files_under(dst_root / "out") == {"plain.txt": b"hi"}


@pytest.mark.parametrize("name", ["bomb.zip", "bomb.tar.gz"])
def test_an_archive_that_expands_past_its_budget_is_refused_whole(
    src, dst, src_root, dst_root, name
) -> None:
    # A 204 kB zip became 200 MiB. Zeros compress a thousandfold: 40 MiB of them make an
    # archive of some 40 kB, allowed 16 MiB (EXPANSION_FLOOR, above 100 times its size).
    members = {"readme.txt": b"small", "zeros.bin": bytes(40 * 1024 * 1024)}
    if name.endswith(".zip"):
        with zipfile.ZipFile(src_root / name, "w", zipfile.ZIP_DEFLATED) as bundle:
            for member, data in members.items():
                bundle.writestr(member, data)
    else:
        write_tar(src_root / name, members)
    assert (src_root / name).stat().st_size < 200_000
    with pytest.raises(PermanentError, match="archive refused"):
        copy_object(unzip_request(src, dst, name))
    assert files_under(dst_root) == {}  # nothing of it, not even its small member


def _zeros_zip(path: Path, size: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("zeros.bin", bytes(size))


def test_the_transfers_own_limit_refuses_an_archive_below_the_default(
    src, dst, src_root, dst_root
) -> None:
    """Defect 18.9: ``--unzip-max-bytes`` sets what an archive may expand to."""
    _zeros_zip(src_root / "small.zip", 1024 * 1024)  # 1 MiB: well inside the default 16 MiB
    request = replace(unzip_request(src, dst, "small.zip"), unzip_max_bytes=512 * 1024)
    with pytest.raises(PermanentError, match=r"more than 524,288 bytes.*the transfer's limit"):
        copy_object(request)
    assert files_under(dst_root) == {}


def test_the_transfers_own_limit_lets_a_larger_archive_through(
    src, dst, src_root, dst_root
) -> None:
    _zeros_zip(src_root / "big.zip", 40 * 1024 * 1024)  # past the default, as above
    request = replace(unzip_request(src, dst, "big.zip"), unzip_max_bytes=64 * 1024 * 1024)
    outcome = copy_object(request)
    assert outcome.bytes == 40 * 1024 * 1024
    assert (dst_root / "out" / "zeros.bin").stat().st_size == 40 * 1024 * 1024
