"""Storage credentials at rest: encrypted with Fernet under a key kept beside the database
(``<data-dir>/secret.key``, mode 0600) or given in ``FERRY_SECRET_KEY``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ferry.errors import SecretKeyError

KEY_FILE = "secret.key"


class Cipher:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            values: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SecretKeyError(
                "stored credentials cannot be decrypted: the secret key is not the one they were"
                " written with (FERRY_SECRET_KEY or secret.key in the data directory)"
            ) from exc
        return values


def load_key(data_dir: Path) -> bytes:
    """``FERRY_SECRET_KEY``, else the key file in ``data_dir``, created (0600) the first time."""
    if env := os.environ.get("FERRY_SECRET_KEY"):
        return env.encode()
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key
