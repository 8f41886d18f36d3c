"""Domain errors. Services raise these; the web layer maps each to one HTTP status and envelope."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose. ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidRequestError(DomainError):
    """Well-formed but impossible (400)."""

    code = "invalid_request"


class ValidationFailedError(DomainError):
    """A value the service refuses after the edge accepted its shape (422)."""

    code = "validation_error"


class AuthenticationError(DomainError):
    """Missing, wrong, expired or revoked credentials (401)."""

    code = "not_authenticated"


class PermissionDeniedError(DomainError):
    """Authenticated, but not allowed (403)."""

    code = "forbidden"


class NotFoundError(DomainError):
    """Missing, or not the caller's: the two are never told apart (404)."""

    code = "not_found"


class ConflictError(DomainError):
    """The state of the object forbids the change (409)."""

    code = "conflict"


class QuotaExceededError(DomainError):
    """A rate or quota limit (429)."""

    code = "quota_exceeded"


class InsufficientCreditsError(DomainError):
    """The balance cannot pay for the work (402)."""

    code = "insufficient_credits"


class UpstreamUnavailableError(DomainError):
    """A dependency (LLM, engine, MCP server, TTS) did not answer (503)."""

    code = "upstream_unavailable"


class PayloadTooLargeError(DomainError):
    """The request body is larger than allowed (413)."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(DomainError):
    """The content is of a kind the service does not take (415)."""

    code = "unsupported_media_type"
