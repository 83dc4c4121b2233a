"""The one exception tree of ``broker``.

``BrokerError`` is the root. Errors a caller caused (bad order, unknown id, stale version,
missing scope) carry the HTTP status they map to, so REST and websocket layers translate
them at the boundary without guessing.
"""

from __future__ import annotations

from typing import Any


class BrokerError(Exception):
    """Root of every error raised by ``broker``."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidRequest(BrokerError):
    """The request is well-formed but cannot be applied (unroutable line, unknown line id)."""

    status = 422
    title = "Unprocessable request"


class NotFound(BrokerError):
    status = 404
    title = "Not found"


class Conflict(BrokerError):
    """The target's state forbids the change (amend a cancelled order, stale version)."""

    status = 409
    title = "Conflict"


class Unauthorized(BrokerError):
    """No token, a bad signature, an expired token."""

    status = 401
    title = "Unauthorized"


class TokenExpired(Unauthorized):
    """A well-signed token past its ``exp``: 401 on REST, close 4501 on a websocket."""


class TokenRevoked(Unauthorized):
    """A well-signed token whose ``jti`` is on the deny-list: 401, close 4501."""


class Forbidden(BrokerError):
    """A valid token whose scope or store does not allow this."""

    status = 403
    title = "Forbidden"


class ContentTooLarge(BrokerError):
    """A request body over its route's limit, refused before it is read (DESIGN.md §8.4)."""

    status = 413
    title = "Content too large"


class RequestTimeout(BrokerError):
    """A request body that did not arrive in time (a slow or stalled sender)."""

    status = 408
    title = "Request timeout"


class RateLimited(BrokerError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class VersionConflict(BrokerError):
    """Storage: an optimistic version check failed (``expected X, got Y``)."""

    status = 409
    title = "Conflict"

    def __init__(self, kind: str, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{kind} {key!r}: expected version {expected}, got {actual}")
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual


class StorageError(BrokerError):
    """The backend failed (disk full, connection lost): the request was not applied."""

    status = 503
    title = "Storage unavailable"


class ConfigError(BrokerError):
    """Broker settings are wrong (no secret, bad storage URL): one clear line, exit 1."""
