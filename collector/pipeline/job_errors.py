"""What a failed job run is: its error kind (for logging once per state change) and the one
line of text its ``errors`` self-metric carries (for ``collector check``).

A job that keeps failing the same way often says so in words that change from run to run:
a server's Retry-After ("next call allowed in 3.2 s"), a login block counting down ("for
another 57 s"), a time or a counter. Such numbers are not part of the kind; what failed
(the request, the device, its id, the HTTP status) is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from collector.logs import redact

#: At most this many characters of error text go into the store.
LABEL_MAX_CHARS = 200

_TIMESTAMP = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"
)
#: A number standing on its own (a quantity, a count, a clock time), not part of an id
#: such as ``io://1234-5678/12#1``, ``ain=08761 0000434`` or ``v1.2.3``, nor an HTTP status.
_NUMBER = re.compile(
    r"(?<![\w\-/#.:=])(?<!HTTP )(?<!\d )[+-]?\d+(?:[.,:]\d+)*(?:\s?(?:ms|s|min|h|%))?"
    r"(?![\w\-/#=]|\.\d)"
)
_SPACE = re.compile(r"\s+")


def error_kind(text: str) -> str:
    """``text`` without what changes from run to run of the same failure."""
    return _NUMBER.sub("#", _TIMESTAMP.sub("#", text))


def error_kinds(errors: Iterable[str]) -> tuple[str, ...]:
    """The distinct kinds of a run's errors, sorted (their order is no change of state)."""
    return tuple(sorted({error_kind(e) for e in errors}))


def error_label(errors: Iterable[str]) -> str:
    """The errors of one run as one redacted line of at most ``LABEL_MAX_CHARS``."""
    text = _SPACE.sub(" ", redact("; ".join(errors))).strip()
    if len(text) > LABEL_MAX_CHARS:
        text = text[: LABEL_MAX_CHARS - 1].rstrip() + "…"
    return text
