"""The error hierarchy, sorted by what the caller does with an error.

* ``TransientError``: try again later (network down, 503, 429, timeouts).
* ``PermanentError``: retrying the same thing will not help (bad credentials,
  a parse failure, a rejected line, a bad config).
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class TransientError(CollectorError):
    """Worth retrying later; ``retry_after`` is a server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(CollectorError):
    """Retrying the same request will fail again."""


class ConfigError(PermanentError):
    """The configuration file is missing, unreadable or invalid."""


class AuthError(PermanentError):
    """Credentials were refused, or the account lacks a permission."""


class ParseError(PermanentError):
    """A device or store answered with something we cannot read.

    ``part`` names the offending element, key or position.
    """

    def __init__(self, message: str, *, part: str | None = None) -> None:
        super().__init__(f"{message} (at {part})" if part else message)
        self.part = part


class EncodeError(PermanentError):
    """A reading cannot be written as line protocol (e.g. NaN or an empty key)."""


class StoreError(CollectorError):
    """Base for store failures."""


class StoreUnavailable(StoreError, TransientError):
    """The store cannot be reached or asked us to back off."""


class StoreRejected(StoreError, PermanentError):
    """The store refused some lines (HTTP 400/422); ``message`` is the server's text."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class StoreTooLarge(StoreError, PermanentError):
    """The request body was too large (HTTP 413); send smaller batches."""


class StoreAuthError(StoreError, AuthError):
    """The store refused our credentials (HTTP 401/403)."""


class PartialFailure(CollectorError):
    """A job collected some readings but part of it failed.

    The job runner stores ``readings`` and counts/logs ``errors`` (one text per failed part).
    """

    def __init__(self, readings: object, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.readings = readings
        self.errors = errors
