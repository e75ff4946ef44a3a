"""Logging setup with secrets redacted at the handler, whatever module logged them.

Secrets come from the config (passwords, tokens, keys) and from sources at run time
(``register_secret`` for session ids); well-known secret shapes in URLs and headers
(``sid=...``, ``token=...``, ``Authorization: ...``, ``https://user:password@host``) are
masked too. ``safe_url`` gives a URL fit for messages that do not pass through logging
(command-line errors).
"""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_MASK = "***"
_secrets: set[str] = set()
_PATTERNS = (
    re.compile(r"(?i)\b(sid|token|password|passwd|pwd|key|response|u|p)=([^&\s\"'<>]+)"),
    re.compile(r"(?i)(<SID>)([0-9a-f]{16})(</SID>)"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(\w+\s+)?([^\s\"',}]+)"),
    # the password of user:password@ in a URL (RFC 3986, 3.2.1)
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):([^@/\s]*)@"),
)


def register_secret(secret: str | None) -> None:
    """Mask ``secret`` in every later log line (ignores empty and trivially short values)."""
    if secret and len(secret) >= 4 and secret != "0000000000000000":  # noqa: S105
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}={_MASK}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{_MASK}{m.group(3)}", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{_MASK}", text)
    return _PATTERNS[3].sub(lambda m: f"{m.group(1)}:{_MASK}@", text)


def safe_url(url: str) -> str:
    """``url`` for a message: no ``user:password@`` and every query value masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _MASK
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, _MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", secrets: list[str] | None = None) -> None:
    for secret in secrets or ():
        register_secret(secret)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO; URLs may carry session ids.
    for noisy in ("httpx", "httpcore", "apscheduler", "urllib3", "influxdb_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
