"""Backend exceptions become ferry errors here, once (transient or permanent, message kept)."""

from __future__ import annotations

import errno
import socket

from ferry.errors import (
    AccessDenied,
    InvalidRequest,
    PermanentError,
    SourceAccessDenied,
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
    if (plain := sftp_as_os_error(exc)) is not None:
        return classify(plain, location, destination=destination)
    if isinstance(exc, FileNotFoundError) and (cause := _real_cause(exc)) is not None:
        # fsspec's HTTP backend reports any failed look at a file (a 500, a 503, a refused
        # connection) as "not found", from the real error: that one says what happened.
        return classify(cause, location, destination=destination)
    if isinstance(exc, FileNotFoundError):
        if destination:  # its folder vanished under us: worth another try
            return TransientError(f"{location} vanished while being written")
        return SourceNotFound(location)
    if isinstance(exc, PermissionError):
        denied = AccessDenied if destination else SourceAccessDenied
        return denied(f"permission denied: {location}")
    if isinstance(exc, IsADirectoryError):
        return PermanentError(f"is a directory: {location} (use a tree transfer)")
    if (status := http_status(exc)) is not None:
        return _by_status(status, exc, location, destination)
    if isinstance(exc, TimeoutError | socket.timeout | ConnectionError):
        return TransientError(f"{type(exc).__name__} on {location}: {exc}")
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
            # Space frees up (other copies end, files are cleaned away): worth another try.
            return TransientError(f"no space left for {location}: {exc.strerror}")
        if exc.errno in _TRANSIENT_ERRNOS:
            return TransientError(f"{exc.strerror or exc} on {location}")
        return PermanentError(f"{exc.strerror or exc} on {location}")
    return TransientError(f"{type(exc).__name__} on {location}: {exc}")


# SFTP status codes (asyncssh's FX_*) that name an OSError: "no such file" (2) and "no such
# path" (10), "permission denied" (3).
_SFTP_CODES: dict[int, type[OSError]] = {
    2: FileNotFoundError,
    10: FileNotFoundError,
    3: PermissionError,
}


def sftp_as_os_error(exc: BaseException) -> OSError | None:
    """The OSError an SFTP server's status stands for, or ``None``. The SFTP backend lets
    asyncssh's errors through unwrapped from a file's open and a folder's listing: a missing
    source was retried as if the network had failed, and a subfolder denied failed the
    whole listing instead of being one failed entry."""
    if not type(exc).__module__.startswith("asyncssh"):
        return None
    code = getattr(exc, "code", None)
    kind = _SFTP_CODES.get(code) if isinstance(code, int) else None
    return None if kind is None else kind(str(getattr(exc, "reason", "") or exc))


def _real_cause(exc: FileNotFoundError) -> BaseException | None:
    """What a "not found" was raised from, unless that is a "not found" too."""
    cause = exc.__cause__
    return None if isinstance(cause, FileNotFoundError) else cause


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an HTTP-speaking backend (aiohttp, httpx, botocore) failed with, if any."""
    for candidate in (exc, exc.__cause__):
        if candidate is None:
            continue
        status = getattr(candidate, "status", None) or getattr(candidate, "status_code", None)
        response = getattr(candidate, "response", None)
        if status is None and isinstance(response, dict):  # botocore's ClientError
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status is None and response is not None:
            status = getattr(response, "status_code", None)
        if isinstance(status, int) and 100 <= status <= 599:
            return status
    return None


def _by_status(status: int, exc: BaseException, location: str, destination: bool) -> TransferError:
    """5xx, 429 and 408 are worth another try; 404 is "not found"; 401/403 are "access denied";
    any other 4xx is permanent. The backend's own message is kept."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if status >= 500 or status in (408, 429):
        return TransientError(f"HTTP {status} on {location}: {message}")
    if status == 404 and not destination:
        return SourceNotFound(location)
    if status in (401, 403):
        denied = AccessDenied if destination else SourceAccessDenied
        return denied(f"access denied (HTTP {status}) on {location}: {message}")
    return PermanentError(f"HTTP {status} on {location}: {message}")
