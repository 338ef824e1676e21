"""Print what an environment has that differs from a lock file: `make test-latest` shows it.

Usage: python requirements/newer.py requirements/dev.txt (run by the environment's own python).
"""

import re
import sys
from importlib.metadata import distributions

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(path: str) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as lock:
        for line in lock:
            if match := PIN.match(line):
                pins.setdefault(canonical(match[1]), set()).add(match[2])
    return pins


def main(path: str) -> None:
    pins = locked_versions(path)
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions()}
    changed = [
        f"  {name}: {' or '.join(sorted(pins[name]))} in the lock, {version} here"
        for name, version in sorted(installed.items())
        if name in pins and version not in pins[name]
    ]
    added = [
        f"  {name} {version}: not in the lock"
        for name, version in sorted(installed.items())
        if name not in pins and name != "ferry"
    ]
    print(f"versions that differ from {path}: {len(changed)}, packages not in it: {len(added)}")
    print("\n".join(changed + added) or "  none")


if __name__ == "__main__":
    main(sys.argv[1])
