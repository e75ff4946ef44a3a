"""Local authentication of the simulated Thinknx server (Integration Kit, "Local based
integration"): HTTP Basic, HTTP Digest (RFC 7616, MD5 or SHA-256, qop=auth) or the
``user``/``pass`` URL parameters, chosen per request by the ``auth`` parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import threading
from collections import OrderedDict
from enum import Enum
from urllib.parse import urlsplit
from urllib.request import parse_http_list, parse_keqv_list

REALM = "Thinknx"
_HASHES = {"MD5": "md5", "MD5-SESS": "md5", "SHA-256": "sha256", "SHA-256-SESS": "sha256"}


class Verdict(Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials: answer with a challenge
    WRONG = "wrong"
    STALE = "stale"  # a digest nonce we no longer know: challenge again with stale=true


class LocalAuth:
    """The one local user of the server and the digest nonces handed out."""

    def __init__(self, username: str, password: str, rng: random.Random) -> None:
        self.username = username
        self._password = password
        self._rng = rng
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.opaque = rng.randbytes(8).hex()

    def params(self, user: str, password: str) -> Verdict:
        ok = _same(user, self.username) and _same(password, self._password)
        return Verdict.OK if ok else Verdict.WRONG

    def basic(self, header: str) -> Verdict:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return Verdict.MISSING
        try:
            text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64, not ASCII, not UTF-8
            return Verdict.WRONG
        user, sep, password = text.partition(":")  # the password may contain ':' itself
        return self.params(user, password) if sep else Verdict.WRONG

    def basic_challenge(self) -> str:
        return f'Basic realm="{REALM}", charset="UTF-8"'

    def digest_challenge(self, *, stale: bool = False) -> str:
        nonce = self._rng.randbytes(16).hex()
        with self._lock:
            self._nonces[nonce] = None
            while len(self._nonces) > 4096:
                self._nonces.popitem(last=False)
        return (
            f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}", '
            f'opaque="{self.opaque}"' + (", stale=true" if stale else "")
        )

    def forget_nonces(self) -> None:
        """Every digest nonce handed out so far is stale (the server's sessions ended)."""
        with self._lock:
            self._nonces.clear()

    def digest(self, header: str, method: str, path: str) -> Verdict:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return Verdict.MISSING
        try:
            fields = parse_keqv_list(parse_http_list(rest))
        except (ValueError, IndexError):  # an element without '=' or with an empty value
            return Verdict.WRONG
        algorithm = fields.get("algorithm", "MD5").upper()
        name = _HASHES.get(algorithm)
        needed = ("username", "realm", "nonce", "uri", "response")
        if name is None or any(k not in fields for k in needed):
            return Verdict.WRONG
        if urlsplit(fields["uri"]).path != path:  # an answer computed for another request
            return Verdict.WRONG
        with self._lock:
            known = fields["nonce"] in self._nonces
        if not known:
            return Verdict.STALE

        def h(text: str) -> str:
            return hashlib.new(name, text.encode("utf-8")).hexdigest()

        ha1 = h(f"{self.username}:{REALM}:{self._password}")
        if algorithm.endswith("-SESS"):
            ha1 = h(f"{ha1}:{fields['nonce']}:{fields.get('cnonce', '')}")
        ha2 = h(f"{method}:{fields['uri']}")
        qop = fields.get("qop")
        if qop == "auth":
            expected = h(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:"
                         f"{fields.get('cnonce', '')}:auth:{ha2}")
        elif qop is None:
            expected = h(f"{ha1}:{fields['nonce']}:{ha2}")
        else:
            return Verdict.WRONG
        ok = _same(fields["username"], self.username) and _same(fields["response"], expected)
        return Verdict.OK if ok else Verdict.WRONG


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
