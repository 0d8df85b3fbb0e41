"""Errors raised by the platform; the HTTP layer maps them to problem+json responses."""

from __future__ import annotations

from collections.abc import Iterable

from formloom.engine.errors import Issue


class PlatformError(Exception):
    """Root of every error raised by ``formloom.platform``."""

    status = 500
    code = "platform_error"

    def __init__(self, message: str, *, issues: Iterable[Issue] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues = list(issues)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the response carries (``WWW-Authenticate``, ``Retry-After``…)."""
        return {}


class NotFound(PlatformError):
    status = 404
    code = "not_found"


class Conflict(PlatformError):
    status = 409
    code = "conflict"


class Invalid(PlatformError):
    """Input breaks rules; ``issues`` lists every problem."""

    status = 422
    code = "invalid"


class Forbidden(PlatformError):
    status = 403
    code = "forbidden"
