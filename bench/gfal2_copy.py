"""Copy with gfal2, the copy engine inside FTS3, one ``filecopy`` per file as FTS does.

Run by Debian's ``/usr/bin/python3`` (python3-gfal2 is a Debian package, not in the venv):

    /usr/bin/python3 bench/gfal2_copy.py [--checksum ADLER32] SOURCE DESTINATION

SOURCE is a URL (``file:///…``, ``http://…``) or a local folder; a folder is copied file by file
into DESTINATION (a local folder) keeping its structure, like ``cp -r``. With ``--checksum``
gfal2 checksums both ends and fails on a mismatch (``checksum_mode.both``).
"""

from __future__ import annotations

import argparse
import os
import sys

import gfal2


def pairs(source: str, destination: str) -> list[tuple[str, str]]:
    """(source URL, destination URL) of every file to copy."""
    if "://" in source:
        return [(source, "file://" + os.path.abspath(destination))]
    source, destination = os.path.abspath(source), os.path.abspath(destination)
    found = []
    for folder, _dirs, files in os.walk(source):
        relative = os.path.relpath(folder, source)
        for name in sorted(files):
            target = os.path.normpath(os.path.join(destination, relative, name))
            found.append(("file://" + os.path.join(folder, name), "file://" + target))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--checksum", default="none", help="ADLER32, MD5… or none")
    args = parser.parse_args()
    context = gfal2.creat_context()
    params = context.transfer_parameters()
    params.create_parent = True
    params.overwrite = False
    if args.checksum.lower() != "none":
        params.set_checksum(gfal2.checksum_mode.both, args.checksum.upper(), "")
    for source, destination in pairs(args.source, args.destination):
        context.filecopy(params, source, destination)  # raises gfal2.GError on failure


if __name__ == "__main__":
    sys.exit(main())
