"""Backend exceptions become ferry errors here, once (transient or permanent, message kept)."""

from __future__ import annotations

import errno
import socket

from ferry.errors import (
    AccessDenied,
    InvalidRequest,
    PermanentError,
    SourceNotFound,
    TransferError,
    TransientError,
)

_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EAGAIN,
    errno.EIO,
    errno.EBUSY,
}


def classify(exc: BaseException, location: str, *, destination: bool = False) -> TransferError:
    """The ferry error for ``exc`` raised while working on ``location``, a source unless
    ``destination`` says otherwise."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, InvalidRequest):  # e.g. a symlink leading out of the storage
        return AccessDenied(str(exc))
    if isinstance(exc, FileNotFoundError):
        if destination:  # its folder vanished under us: worth another try
            return TransientError(f"{location} vanished while being written")
        return SourceNotFound(location)
    if isinstance(exc, PermissionError):
        return AccessDenied(f"permission denied: {location}")
    if isinstance(exc, IsADirectoryError):
        return PermanentError(f"is a directory: {location} (use a tree transfer)")
    if isinstance(exc, TimeoutError | socket.timeout | ConnectionError):
        return TransientError(f"{type(exc).__name__} on {location}: {exc}")
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
            return PermanentError(f"no space left for {location}: {exc.strerror}")
        if exc.errno in _TRANSIENT_ERRNOS:
            return TransientError(f"{exc.strerror or exc} on {location}")
        return PermanentError(f"{exc.strerror or exc} on {location}")
    return TransientError(f"{type(exc).__name__} on {location}: {exc}")
