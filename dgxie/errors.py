"""Errors that carry their HTTP status.

Services raise these; the API turns them into `{"detail": ...}` with the status, the CLI into one
line on stderr and exit status 1. Anything else escaping a request is a bug (a 500).
"""

from __future__ import annotations


class DgxieError(Exception):
    """A user-facing error: bad input or a refused operation."""

    status: int = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Invalid(DgxieError):
    """The request is well-formed but its content is not acceptable."""

    status = 422


class NotFound(DgxieError):
    status = 404


class Conflict(DgxieError):
    """The change would break a uniqueness rule or the lifecycle."""

    status = 409


class Unauthorized(DgxieError):
    status = 401


class Forbidden(DgxieError):
    status = 403


class TooLarge(DgxieError):
    status = 413


class Unavailable(DgxieError):
    """A peer (BMC, upstream mirror) or a rendered artefact is not available now."""

    status = 503


class ConfigError(DgxieError):
    """The configuration file or environment is invalid; one line per mistake."""

    status = 500
