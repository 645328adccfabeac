"""Domain errors that carry their HTTP status, so routes stay thin and bad input is never a 500."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the service reports to a caller."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(DomainError):
    """The request is malformed or violates a rule about its own content."""

    status = 400
    code = "bad_request"


class Invalid(DomainError):
    """A field's value is unacceptable (the same family as FastAPI's 422)."""

    status = 422
    code = "invalid"


class Unauthorized(DomainError):
    """Credentials are missing or wrong."""

    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    """Credentials are valid but do not grant this action."""

    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """The named thing does not exist."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is well-formed but contradicts the current state (illegal transition, etc.)."""

    status = 409
    code = "conflict"


class TooManyRequests(DomainError):
    """A rate limit was hit."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A backing service is down; the caller may retry."""

    status = 503
    code = "unavailable"


class ConfigError(Exception):
    """A setting is invalid; start-up stops with a message naming it."""
