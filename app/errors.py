"""The errors every layer raises. Each blueprint has one mapper that turns them into its
protocol's format (OCI JSON errors, PyPI's status reason, /api/v1 JSON errors, HTML pages).

A leaf module: it imports nothing from the application, so ports and the core may use it.
"""

from __future__ import annotations


class CoreError(Exception):
    """A refusal the caller can act on. `message` is meant for the caller: it names what was
    asked for, never an internal key."""

    status = 500
    code = "ERROR"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class Invalid(CoreError):
    status, code = 400, "INVALID"


class NotFound(CoreError):
    status, code = 404, "NOT_FOUND"


class Conflict(CoreError):
    status, code = 409, "CONFLICT"


class TooLarge(CoreError):
    status, code = 413, "TOO_LARGE"


class Unauthenticated(CoreError):
    """No credentials, or credentials that prove nothing. `scope` names what a token would need
    (a token service's scope string); `error` is the Bearer challenge's error code."""

    status, code = 401, "UNAUTHORIZED"

    def __init__(
        self,
        message: str = "authentication required",
        *,
        scope: str | None = None,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, headers=headers)
        self.scope, self.error = scope, error


class Denied(CoreError):
    status, code = 403, "DENIED"


class TooManyRequests(CoreError):
    status, code = 429, "TOOMANYREQUESTS"


class Unavailable(CoreError):
    """A storage or database backend is down: the client may retry."""

    status, code = 503, "UNAVAILABLE"
