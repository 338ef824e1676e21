"""How the clients and the agent reach a server over TLS: which certificate authorities they
trust, and one line for each way a connection fails that a user can fix. Standard library only:
the plain client (``plain.py``) uses it too."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from ferry.errors import ConfigError


def find_ca(ca: Path | None) -> Path | None:
    """``ca``, else ``FERRY_CA``; ``None``: the system's certificate authorities."""
    if ca:
        return ca
    env = os.environ.get("FERRY_CA")
    return Path(env) if env else None


def tls_context(ca: Path | None) -> ssl.SSLContext:
    """What verifies the server's certificate: the CA certificates in ``ca`` alone (as
    ``curl --cacert``), else the system's."""
    try:
        return ssl.create_default_context(cafile=ca)
    except FileNotFoundError as exc:
        raise ConfigError(f"CA file {ca}: {exc.strerror}") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"CA file {ca}: not PEM certificates ({exc})") from None


def why_unreachable(url: str, exc: BaseException, *, hung_up: bool) -> str:
    """One line for a request that got no answer, saying what to do about the TLS mistakes:
    a certificate not trusted, https to a plain server, plain http to a TLS server (which
    closes the connection without a word, ``hung_up``, or, when busy, resets it)."""
    causes = _causes(exc)
    hung_up = hung_up or any(isinstance(cause, ConnectionResetError) for cause in causes)
    if refusal := untrusted(exc):
        return (
            f"its certificate is not trusted ({refusal.verify_message}): give --ca FILE"
            " (or FERRY_CA) with the certificate of the CA that signed it"
        )
    tls = next((cause for cause in causes if isinstance(cause, ssl.SSLError)), None)
    if tls is not None and url.startswith("https:"):
        return f"the TLS handshake failed ({tls.reason or tls}): is it an https:// server?"
    if hung_up and url.startswith("http:"):
        return "it closed the connection without an answer: if it serves https, use https://"
    return str(exc) or type(exc).__name__


def untrusted(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The refusal of the server's certificate behind ``exc``, if that is what it is."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found
