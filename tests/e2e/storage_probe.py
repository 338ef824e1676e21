"""Run as a separate process by the storage tests: write a tree to, or read one back from, a
storage through fsspec directly (not through Ferry). A process of its own, so the clients it
opens (S3, WebDAV, SFTP connection pools) close with it.

    python storage_probe.py write URL OPTIONS_JSON FOLDER < {"name": hex-bytes, ...}
    python storage_probe.py read URL OPTIONS_JSON FOLDER > {"name": sha256, ...}
"""

from __future__ import annotations

import hashlib
import json
import sys

import fsspec


def connect(url: str, options: dict[str, object], folder: str) -> tuple[object, str]:
    url = url.rstrip("/")
    if url.startswith("webdav://"):
        address, _, path = url.removeprefix("webdav://").partition("/")
        options = {**options, "base_url": f"http://{address}"}
        url = f"webdav://{path}"
    fs, root = fsspec.core.url_to_fs(f"{url}/{folder}", skip_instance_cache=True, **options)
    return fs, root.rstrip("/")


def main() -> None:
    action, url, options, folder = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    fs, root = connect(url, options, folder)
    if action == "write":
        for name, data in json.load(sys.stdin).items():
            path = f"{root}/{name}"
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            fs.pipe_file(path, bytes.fromhex(data))
        return
    found = {}
    for path in fs.find(root):
        relative = path[len(root) + 1 :] if path.startswith(root + "/") else path
        found[relative] = hashlib.sha256(fs.cat_file(path)).hexdigest()
    json.dump(found, sys.stdout)


if __name__ == "__main__":
    main()
