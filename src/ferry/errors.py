"""Every error Ferry raises, in one tree.

::

    FerryError
    ├── InvalidRequest              bad input from a user (API 422/400)
    │   ├── InvalidLocation         "STORAGE:PATH" malformed
    │   ├── InvalidSchedule         a schedule that cannot be kept (bad cron, time zone, interval)
    │   └── PathOutsideStorage      a path escapes its storage root
    │       ├── ProtectedPath       a path in the server's own data directory
    │       └── LocalUrlRefused     file:// or local:// instead of a registered storage
    ├── NotFound                    (API 404)
    │   ├── TransferNotFound
    │   ├── StorageNotFound
    │   └── AgentNotFound
    ├── Conflict                    (API 409)
    │   ├── IllegalTransition       a state change the state machine forbids
    │   ├── AlreadyFinished         cancel of a finished one-shot transfer
    │   ├── AmbiguousId             a short id that starts more than one transfer's id
    │   └── AgentNotConnected       a command for an agent that is not heartbeating
    ├── AuthError
    │   ├── Unauthenticated         no or unknown token (API 401)
    │   │   └── SignInNeeded        a dashboard page without a live session (to /login)
    │   ├── Forbidden               token lacks the role (API 403)
    │   │   └── CapabilityRefused   a push's or pull's capability unknown, expired or not its own
    │   ├── OutOfScope              a scope or storage the caller's scope may not use (API 403)
    │   ├── AddressRefused          the caller's address is not allowed for its role (API 403)
    │   ├── FormRejected            a dashboard form without its session's CSRF token (403)
    │   └── SecretRejected          agent one-time secret unknown, reused or not for this name
    ├── ServerStopping              the server is shutting down (API 503)
    ├── AgentDidNotAnswer           an agent left a command unanswered (API 504)
    ├── StoreUnavailable            the database failed a write a moment ago (API 503)
    ├── StorageUnreachable          a storage the server itself had to read failed (API 502)
    ├── ConfigError                 a daemon's configuration has a bad or unknown key
    ├── SecretKeyError              the server's key cannot decrypt the stored credentials
    ├── AgentRefused                the server refuses this agent (token revoked, replaced)
    ├── ApiError                    an error answer from the server, to the client or an agent
    ├── ServerUnreachable           no answer from the server, seen by the plain client
    └── TransferError               one attempt of one object failed
        ├── TransientError          retried: network, timeouts, stalls, 5xx, 429, agent lost
        │   ├── ChecksumMismatch
        │   │   └── SourceReadsDiffer  a second read of the source sums differently
        │   └── TransferStalled     no data for stall_s seconds
        └── PermanentError          not retried
            ├── SourceNotFound
            ├── AccessDenied
            │   └── SourceAccessDenied  on the source's side (skip_source_errors skips it)
            └── TransferCanceled    the transfer was canceled while this object moved

Each error builds its message from what it is given. Whether a transfer error is worth retrying
is a property of its class (``retryable``).

Two exceptions of the engine are not errors of this tree but signals inside one copy, never
raised out of ``copy_object``: ``SourceChanged`` (the source is being written to) and
``DestinationError`` (what went wrong was the destination's), both in ``engine.requests``,
each turned into the ``TransferError`` above that names the side it came from.
"""

from __future__ import annotations

import json


class FerryError(Exception):
    """Root of every error Ferry raises on purpose."""


class InvalidRequest(FerryError):
    """The request cannot be carried out as written."""


class StorageUnreachable(FerryError):
    """A storage the server read to answer (a dry run's listing) failed: the request may
    well succeed later."""


class InvalidLocation(InvalidRequest):
    def __init__(self, location: str, why: str) -> None:
        super().__init__(f"invalid location {location!r}: {why}")
        self.location = location


class PathOutsideStorage(InvalidRequest):
    def __init__(self, storage: str, path: str, why: str | None = None) -> None:
        super().__init__(why or f"path {path!r} is outside storage {storage!r}")
        self.storage = storage
        self.path = path


class ProtectedPath(PathOutsideStorage):
    """A path of a storage that is, or is inside, the server's own data directory."""

    def __init__(self, storage: str, path: str) -> None:
        why = f"{storage}:{path} is inside the server's data directory: refused"
        super().__init__(storage, path, why)


class InvalidSchedule(InvalidRequest):
    def __init__(self, why: str) -> None:
        super().__init__(f"invalid schedule: {why}")


class LocalUrlRefused(PathOutsideStorage):
    def __init__(self, text: str) -> None:
        why = (
            f"{text}: local files are named through a registered storage (STORAGE:PATH),"
            " never as file URLs"
        )
        super().__init__(text.partition(":")[0], text, why)


class ConfigError(FerryError):
    """A daemon cannot start (or reload) with this configuration; the message names the key."""


class SecretKeyError(FerryError):
    """The key cannot decrypt what the database holds (it was changed or lost)."""


class AgentRefused(FerryError):
    """The server refuses this agent (token revoked, agent replaced): it stops, and its
    supervisor starts a new one."""


class NotFound(FerryError):
    """Something named in the request does not exist."""


class TransferNotFound(NotFound):
    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"transfer {transfer_id} not found")
        self.transfer_id = transfer_id


class StorageNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"storage {name!r} is not registered")
        self.name = name


class AgentNotFound(NotFound):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id} not found")
        self.agent_id = agent_id


class Conflict(FerryError):
    """The request contradicts the current state."""


class IllegalTransition(Conflict):
    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity} cannot go from {current} to {target}")
        self.entity = entity
        self.current = current
        self.target = target


class AlreadyFinished(Conflict):
    def __init__(self, transfer_id: str, status: str) -> None:
        super().__init__(f"transfer {transfer_id} already finished ({status})")
        self.transfer_id = transfer_id
        self.status = status


class AmbiguousId(Conflict):
    def __init__(self, prefix: str, candidates: list[str]) -> None:
        super().__init__(f"{prefix} starts more than one transfer id: {', '.join(candidates)}")
        self.prefix = prefix
        self.candidates = candidates


class AgentNotConnected(Conflict):
    def __init__(self, name: str, state: str) -> None:
        super().__init__(f"agent {name} is {state}, not connected: it cannot take a command")
        self.name = name


class AgentDidNotAnswer(FerryError):
    """An agent was sent a command and did not answer in time; it may still carry it out."""

    def __init__(self, name: str, command: str, seconds: float) -> None:
        super().__init__(
            f"agent {name} did not answer {command} within {seconds:.0f} s; it may still"
            " carry it out (an agent older than this server ignores commands)"
        )
        self.name = name


class AuthError(FerryError):
    """Authentication or authorization failed."""


class Unauthenticated(AuthError):
    def __init__(self, why: str = "a valid bearer token is required") -> None:
        super().__init__(why)


class SignInNeeded(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("sign in to the dashboard first")


class FormRejected(AuthError):
    def __init__(self) -> None:
        super().__init__("the form does not carry this session's CSRF token")


class Forbidden(AuthError):
    def __init__(self, needed: str) -> None:
        super().__init__(f"this call needs the {needed} role")
        self.needed = needed


class CapabilityRefused(Forbidden):
    def __init__(self, why: str) -> None:
        super().__init__(f"capability refused: {why}")


class OutOfScope(AuthError):
    """The caller acts outside what its scopes hold: another scope, or a storage its scope is
    not granted."""


class AddressRefused(AuthError):
    def __init__(self, address: str, role: str, why: str) -> None:
        super().__init__(f"{role} callers are refused from {address}: {why}")
        self.address = address
        self.role = role


class SecretRejected(AuthError):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"registration of agent {name!r} refused: {why}")
        self.name = name


class ServerStopping(FerryError):
    def __init__(self) -> None:
        super().__init__("the server is shutting down: try again shortly")


class StoreUnavailable(FerryError):
    def __init__(self, cause: str) -> None:
        super().__init__(f"the database is unavailable ({cause}): try again shortly")
        self.cause = cause


class ApiError(FerryError):
    """The server answered with a problem document."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail

    @classmethod
    def from_answer(cls, status: int, reason: str, content: bytes) -> ApiError:
        """The error an answer of ``status`` stands for: its problem document's title and
        detail, or, from a body that is not one (a proxy's page, a cut-off answer), its
        reason phrase and first words. The client and the agent both read errors here."""
        try:
            body = json.loads(content)
            return cls(status, str(body.get("title", "")), str(body.get("detail", "")))
        except (ValueError, AttributeError):  # not JSON; JSON, but not an object
            return cls(status, reason, content[:200].decode(errors="replace"))


class ServerUnreachable(FerryError):
    """The server could not be reached, or did not answer (the typed clients raise httpx's own
    ``TransportError`` instead)."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"cannot reach the server at {url}: {why}")
        self.url = url


class TransferError(FerryError):
    """One attempt to move one object failed; ``retryable`` says whether to try again."""

    retryable = False
    error_class = "error"
    on_destination = False  # raised on the destination's side of a copy (set by the copy)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientError(TransferError):
    retryable = True
    error_class = "transient"


class PermanentError(TransferError):
    retryable = False
    error_class = "permanent"


class SourceNotFound(PermanentError):
    error_class = "not_found"

    def __init__(self, location: str) -> None:
        super().__init__(f"not found: {location}")


class AccessDenied(PermanentError):
    error_class = "access_denied"


class SourceAccessDenied(AccessDenied):
    """Denied reading the source (a destination's refusal is a plain ``AccessDenied``): what
    ``skip_source_errors`` turns into SKIPPED, with ``SourceNotFound``."""


class ChecksumMismatch(TransientError):
    """Retried (the bytes may have been damaged in flight), and counted apart from others."""

    error_class = "checksum"

    def __init__(self, location: str, expected: str, actual: str) -> None:
        super().__init__(f"checksum mismatch on {location}: expected {expected}, got {actual}")


class SourceReadsDiffer(ChecksumMismatch):
    """The source, read a second time (``verify_source``), does not sum to what the copy read:
    a byte damaged on its way out of the source, which the copy's own checksum cannot see."""

    def __init__(self, location: str, first: str, second: str) -> None:
        TransientError.__init__(
            self, f"{location} read twice gave different bytes: {first}, then {second}"
        )


class TransferStalled(TransientError):
    error_class = "stalled"

    def __init__(self, location: str, seconds: float) -> None:
        super().__init__(f"stalled: no data from {location} for {seconds:.0f} s")


class TransferCanceled(PermanentError):
    error_class = "canceled"

    def __init__(self, location: str) -> None:
        super().__init__(f"canceled while copying {location}")
