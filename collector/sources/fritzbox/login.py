"""FRITZ!Box login, without I/O: the ``login_sid.lua`` answer and the challenge responses.
The back-off after refused credentials (:mod:`collector.sources.backoff`) is shared with the
TR-064 client and the other sources.

AVM's "Session-IDs im FRITZ!Box Webinterface" note (``login_sid.lua?version=2``): PBKDF2
challenges (``2$iter1$salt1$iter2$salt2``) and the older MD5 challenge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from collector.errors import ParseError

# The back-off after refused credentials is shared with the other sources; it is named here
# too, where the FRITZ!Box modules have always found it.
from collector.sources.backoff import (
    AUTH_BACKOFF_INITIAL_S,
    AUTH_BACKOFF_MAX_S,
    AuthBackoff,
    Clock,
    Sleep,
)
from collector.sources.fritzbox.xmldoc import parse_xml

__all__ = [
    "AUTH_BACKOFF_INITIAL_S",
    "AUTH_BACKOFF_MAX_S",
    "NO_SID",
    "AuthBackoff",
    "Clock",
    "SessionInfo",
    "Sleep",
    "is_session_expired_answer",
    "login_response",
    "md5_response",
    "parse_session_info",
    "pbkdf2_response",
]

NO_SID = "0000000000000000"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The answer of ``login_sid.lua``; ``rights`` are (name, access level) pairs."""

    sid: str
    challenge: str
    block_time_s: int
    rights: tuple[tuple[str, int], ...] = ()

    @property
    def valid(self) -> bool:
        return bool(self.sid) and self.sid != NO_SID


def parse_session_info(body: bytes) -> SessionInfo:
    """Parse a ``<SessionInfo>`` document."""
    root = parse_xml(body, "login_sid.lua")
    if root.tag != "SessionInfo":
        raise ParseError("login_sid.lua did not answer with a SessionInfo", part="root element")
    sid = (root.findtext("SID") or "").strip()
    if not sid:
        raise ParseError("SessionInfo without a SID", part="SessionInfo/SID")
    block = (root.findtext("BlockTime") or "0").strip() or "0"
    try:
        block_time_s = int(block)
    except ValueError as err:
        raise ParseError(f"BlockTime {block!r} is not a number", part="BlockTime") from err
    rights: list[tuple[str, int]] = []
    rights_el = root.find("Rights")
    if rights_el is not None:
        name: str | None = None
        for child in rights_el:
            text = (child.text or "").strip()
            if child.tag == "Name":
                name = text
            elif child.tag == "Access" and name is not None:
                rights.append((name, int(text) if text.isdigit() else 0))
                name = None
    return SessionInfo(
        sid=sid,
        challenge=(root.findtext("Challenge") or "").strip(),
        block_time_s=max(block_time_s, 0),
        rights=tuple(rights),
    )


def is_session_expired_answer(body: bytes) -> bool:
    """True when an AHA answer is a SessionInfo saying that our SID is no longer valid."""
    head = body[:512]
    return b"<SessionInfo" in head and b"<SID>" + NO_SID.encode() + b"</SID>" in body[:2048]


def pbkdf2_response(challenge: str, password: str) -> str:
    """Response to a version-2 challenge ``2$<iter1>$<salt1>$<iter2>$<salt2>`` (hex salts)."""
    try:
        version, iter1, salt1, iter2, salt2 = challenge.split("$")
        if version != "2":
            raise ValueError(version)
        hash1 = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt1), int(iter1))
        hash2 = hashlib.pbkdf2_hmac("sha256", hash1, bytes.fromhex(salt2), int(iter2))
    except ValueError as err:
        raise ParseError("malformed PBKDF2 login challenge", part="SessionInfo/Challenge") from err
    return f"{salt2}${hash2.hex()}"


def md5_response(challenge: str, password: str) -> str:
    """Response to a legacy challenge: MD5 of UTF-16LE ``challenge-password``.

    AVM's note: characters above U+00FF are replaced by "." before hashing.
    """
    text = "".join(c if ord(c) <= 0xFF else "." for c in f"{challenge}-{password}")
    digest = hashlib.md5(text.encode("utf-16-le"), usedforsecurity=False).hexdigest()
    return f"{challenge}-{digest}"


def login_response(challenge: str, password: str) -> str:
    if challenge.startswith("2$"):
        return pbkdf2_response(challenge, password)
    return md5_response(challenge, password)
