"""The one table from an Overkiz error answer to a typed error.

The service answers errors as ``{"errorCode": "...", "error": "..."}`` (spec: "Error
responses"); the text is more precise than the code (``RESOURCE_ACCESS_DENIED`` covers both a
lost session and "too many concurrent requests"), so the table is matched on the text first,
then on the code, then on the HTTP status. Proxies in front of the cloud answer 502/503 with
HTML, which is a transient outage, not a parse failure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from collector.errors import AuthError, CollectorError, PermanentError, TransientError


class OverkizNotAuthenticated(TransientError):
    """The session (cookie or token) is no longer valid: log in again."""


class OverkizBadCredentials(AuthError):
    """The server refused the account or token; never retried in a tight loop."""


class OverkizBanned(AuthError):
    """The server banned the account for a while after too many failed attempts."""


class OverkizAccessDenied(AuthError):
    """The account may not do this (application, gateway or setup not allowed)."""


class OverkizRateLimited(TransientError):
    """Too many requests, concurrent requests or executions: back off."""


class OverkizListenerLost(TransientError):
    """The event listener expired or is unknown: register a new one."""


class OverkizNotFound(PermanentError):
    """The device, state, resource or object does not exist."""


class OverkizNotOffered(OverkizNotFound):
    """The server does not offer this operation at all ("No such resource", errorCode
    INVALID_API_CALL: errors/cloud/no-such-resource.json): not one device's problem."""


class OverkizBadRequest(PermanentError):
    """The server found our request malformed."""


class OverkizUnavailable(TransientError):
    """The server or its proxy is down or in maintenance (5xx)."""


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The parts of an error answer the table looks at; both may be empty."""

    code: str
    text: str


#: (pattern on the error text, type). First match wins; patterns are case-insensitive.
_BY_TEXT: tuple[tuple[re.Pattern[str], type[CollectorError]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"no registered event listener|invalid event listener id", OverkizListenerLost),
        (r"^not authenticated|missing authorization token", OverkizNotAuthenticated),
        (r"temporarily banned", OverkizBanned),
        (r"too many (requests|concurrent requests|executions)|server busy", OverkizRateLimited),
        (r"bad credentials|no such user account", OverkizBadCredentials),
        (r"invalid token|not such token", OverkizBadCredentials),
        (r"api key is required", OverkizBadCredentials),
        (r"^no such resource", OverkizNotOffered),
        (r"^no such |^unknown object|no corresponding execid", OverkizNotFound),
        (r"unable to determine action group setup", OverkizNotFound),
    )
)

#: errorCode -> type, for texts the table above does not know.
_BY_CODE: dict[str, type[CollectorError]] = {
    "AUTHENTICATION_ERROR": OverkizBadCredentials,
    "RESOURCE_ACCESS_DENIED": OverkizAccessDenied,
    "EXEC_QUEUE_FULL": OverkizRateLimited,
    "NO_SUCH_RESSOURCE": OverkizNotFound,
    "NO_SUCH_DEVICE": OverkizNotFound,
    "NO_SUCH_ACTION_GROUP": OverkizNotFound,
    "INVALID_API_CALL": OverkizNotOffered,
    "INVALID_FIELD_VALUE": OverkizBadRequest,
    "INVALID_PARAMETER": OverkizBadRequest,
    "MISSING_PARAMETERS": OverkizBadRequest,
    "DUPLICATE_FIELD_OR_VALUE": OverkizBadRequest,
    "UNSUPPORTED_OPERATION": OverkizBadRequest,
    "DBUS_ERROR": OverkizUnavailable,
}


_TOKEN_TEXT = re.compile(r"(token[^:]*:\s*)\S+", re.IGNORECASE)


def _redact(text: str) -> str:
    """Hide a token the server echoes back ("Invalid token : <uuid>")."""
    return _TOKEN_TEXT.sub(r"\1***", text)


def parse_error_body(body: bytes) -> ErrorBody:
    """Read ``errorCode``/``error`` from an answer; anything else gives empty parts."""
    try:
        doc = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return ErrorBody("", "")
    if not isinstance(doc, dict):
        return ErrorBody("", "")
    code = doc.get("errorCode")
    text = doc.get("error")
    return ErrorBody(
        code if isinstance(code, str) else "",
        # Some texts arrive quoted twice: "\"No registered event listener.\"".
        text.strip().strip('"').strip() if isinstance(text, str) else "",
    )


def error_for(status: int, body: bytes, *, retry_after: float | None = None) -> CollectorError:
    """The typed error for an answer with ``status`` and ``body`` (which is not a success)."""
    parts = parse_error_body(body)
    message = f"Overkiz answered HTTP {status}"
    if parts.code or parts.text:
        message += f": {parts.code or '-'} {_redact(parts.text)!r}"
    kind: type[CollectorError] | None = None
    for pattern, candidate in _BY_TEXT:
        if parts.text and pattern.search(parts.text):
            kind = candidate
            break
    if kind is None and status == 429:
        kind = OverkizRateLimited
    if kind is None and status >= 500:
        kind = OverkizUnavailable
    if kind is None:
        kind = _BY_CODE.get(parts.code)
    if kind is None:
        if status == 401:
            kind = OverkizNotAuthenticated
        elif status == 403:
            kind = OverkizAccessDenied
        elif status == 404:
            kind = OverkizNotFound
        else:
            kind = OverkizBadRequest
    if issubclass(kind, TransientError):
        return kind(message, retry_after=retry_after)
    return kind(message)
