"""Logging for the daemons: one line per event, levels per subsystem (``ferry.api``,
``ferry.scheduler``, ``ferry.agent``, ``ferry.engine``, ``ferry.security``, ``ferry.daemon``),
to standard error and, with a log folder, to a file of the daemon's own that rotates by size.
Secrets are redacted from every line, whoever wrote it."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import warnings
from collections.abc import Iterable

from ferry.config import SUBSYSTEMS, LogSettings

FORMAT = "%(asctime)s {daemon} %(levelname)s %(name)s: %(message)s"

# key=value, "key": "value" and bearer tokens whose key says they are secret.
_SECRET_PAIRS = re.compile(
    r"""(?ix)
    ((?<![a-z0-9])[a-z0-9_-]*(?:password|passphrase|secret|token|api[_-]?key|secret[_-]?key
       |access[_-]?key|auth)
       ["']?\s*[:=]\s*["']?)
    ([^\s"',;&}]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]+)")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s/]+)(@)")


class Redactor(logging.Filter):
    """Replaces secrets in each record's final message: values of secret-looking keys, bearer
    tokens, and any exact secret the daemon registered (its token, its one-time secret)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self.known: set[str] = {k for k in known if len(k) >= 8}

    def add(self, secret: str) -> None:
        if len(secret) >= 8:
            self.known.add(secret)

    def redact(self, text: str) -> str:
        for secret in self.known:
            text = text.replace(secret, "[redacted]")
        text = _SECRET_PAIRS.sub(r"\1[redacted]", text)
        text = _URL_PASSWORD.sub(r"\1[redacted]\3", text)
        return _BEARER.sub(r"\1[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


REDACTOR = Redactor()


# Every control character but the tab, C0 and C1 and DEL: written as an escape, so that a name
# or a host sent by anyone (an unauthenticated registration's, say) cannot move the cursor,
# recolour or clear an operator's terminal, nor start a line of its own.
_CONTROLS = {
    code: f"\\x{code:02x}" for code in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if code != 0x09
} | {0x0A: "\\n"}


class OneLine(logging.Formatter):
    """One line per event, a traceback included: its line breaks are written as ``\\n``, so
    that grep and log shippers see whole events, and every other control character as
    ``\\xNN``."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).translate(_CONTROLS)


def configure_logging(settings: LogSettings, *, daemon: str) -> None:
    """Install the daemon's handlers and levels (again on SIGHUP: the same call)."""
    formatter = OneLine(FORMAT.format(daemon=daemon))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.dir is not None:
        settings.dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.dir / f"{daemon}.log",
                maxBytes=settings.max_bytes,
                backupCount=settings.backups,
                encoding="utf-8",
            )
        )
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(REDACTOR)
    root.handlers[:] = handlers
    root.setLevel(logging.WARNING)
    apply_levels(settings)
    # Python's warnings become log lines like any other event (one line, redacted, escaped)
    # instead of going raw to standard error. A dependency's deprecation of its own
    # dependency, which no operator can act on, is left out, as in the tests' filters:
    # asyncssh names cryptography's DSA classes at import, five lines in every agent's log.
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh\.crypto")


def apply_levels(settings: LogSettings) -> None:
    logging.getLogger("ferry").setLevel(settings.level)
    logging.getLogger("uvicorn.error").setLevel(settings.level)
    for name in SUBSYSTEMS[1:]:  # a level dropped from the file is dropped here too
        logging.getLogger(name).setLevel(settings.levels.get(name, logging.NOTSET))
    for name, level in settings.levels.items():
        logging.getLogger(name).setLevel(level)
