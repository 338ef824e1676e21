"""What an agent registers with: a one-time secret (from the environment or a file, so that it
never shows in ``ps``), a token given to it, or the token it kept from its last registration.

Each registration replaces the agent's token on the server, so the new one is written at once,
readable by its owner only, to ``agent-NAME.token`` in the agent's data directory: restarted,
the agent registers with it and needs no new invitation."""

from __future__ import annotations

import os
from pathlib import Path

from ferry.errors import InvalidRequest


def token_file(data_dir: Path, name: str) -> Path:
    return data_dir / f"agent-{name}.token"


def read_secret_file(path: Path) -> str:
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise InvalidRequest(f"cannot read the secret file {path}: {exc.strerror}") from exc
    if not secret:
        raise InvalidRequest(f"the secret file {path} is empty")
    return secret


def saved_token(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def save_token(path: Path, token: str) -> None:
    """Replace the kept token whole (a new file, mode 0600 from its first byte, renamed over the
    old): a crash leaves the old token or the new one, never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)


def choose(
    *, secret: str | None, secret_file: Path | None, token: str | None, kept: Path
) -> tuple[str | None, str | None]:
    """``(secret, token)``, one of them set: a secret given (or read from its file) or a token
    given, else the token kept from the last registration."""
    if secret and secret_file:
        raise InvalidRequest("give the secret once: --secret or --secret-file, not both")
    if secret_file is not None:
        secret = read_secret_file(secret_file)
    if secret and token:
        raise InvalidRequest("give a one-time secret or a token, not both")
    if secret or token:
        return secret, token
    if (found := saved_token(kept)) is not None:
        return None, found
    raise InvalidRequest(
        f"no secret, no token, and none kept in {kept}: give the one-time secret"
        " (FERRY_AGENT_SECRET or --secret-file; ferry agent-invite NAME makes one)"
    )
