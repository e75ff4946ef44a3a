"""The login of the simulated FRITZ!Box (login_sid.lua): PBKDF2 (version=2) and MD5
challenge-response, BlockTime doubling after each wrong password, sessions that end after a
time without requests, and an invalid SID ending every session, as real boxes do
(avm-aha-http-interface.txt and AVM's Session-ID technical note).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import threading

NO_SID = "0000000000000000"
MAX_BLOCK_S = 256
PBKDF2_ITER1 = 10_000
PBKDF2_ITER2 = 2_000
RIGHTS = "".join(
    f"<Name>{name}</Name><Access>2</Access>"
    for name in ("Dial", "App", "HomeAuto", "BoxAdmin", "Phone", "NAS")
)


class Login:
    """Challenges, sessions and the login block of one box."""

    def __init__(
        self, username: str, password: str, rng: random.Random, *, md5_only: bool, ttl_s: float
    ) -> None:
        self.username = username
        self._password = password
        self._rng = rng
        self.md5_only = md5_only
        self.ttl_s = ttl_s
        self._salt1 = rng.randbytes(16)
        self._hash1 = hashlib.pbkdf2_hmac("sha256", password.encode(), self._salt1, PBKDF2_ITER1)
        self._sessions: dict[str, float] = {}
        self._open: list[str] = []  # challenges handed out and not used yet
        self._failures = 0
        self._blocked_until = 0.0
        self.login_count = 0
        self.logins_failed = 0
        self.invalid_sids = 0
        self.lock = threading.Lock()
        self.pbkdf2_challenge = self.md5_challenge = ""
        self._new_challenges()

    def _new_challenges(self) -> None:
        salt2 = self._rng.randbytes(16).hex()
        self.pbkdf2_challenge = f"2${PBKDF2_ITER1}${self._salt1.hex()}${PBKDF2_ITER2}${salt2}"
        self.md5_challenge = self._rng.randbytes(4).hex()
        self._open = [*self._open[-14:], self.pbkdf2_challenge, self.md5_challenge]

    def challenge(self, version2: bool) -> str:
        return self.pbkdf2_challenge if version2 and not self.md5_only else self.md5_challenge

    def block_left(self, now: float) -> int:
        return max(0, math.ceil(self._blocked_until - now))

    def _verify(self, response: str) -> bool:
        if "$" in response and not self.md5_only:
            salt2, _, digest = response.partition("$")
            issued = [c for c in self._open if c.startswith("2$") and c.endswith("$" + salt2)]
            if not issued:
                return False
            self._open.remove(issued[0])
            expected = hashlib.pbkdf2_hmac(
                "sha256", self._hash1, bytes.fromhex(salt2), PBKDF2_ITER2
            ).hex()
            return hmac.compare_digest(digest.lower(), expected)
        challenge, _, digest = response.rpartition("-")
        if challenge not in self._open:
            return False
        self._open.remove(challenge)
        text = f"{challenge}-{self._password}".encode("utf-16le")
        return hmac.compare_digest(digest.lower(), hashlib.md5(text).hexdigest())  # noqa: S324

    def login(self, username: str, response: str, now: float) -> str | None:
        with self.lock:
            if self.block_left(now) > 0:
                self.logins_failed += 1
                return None
            try:
                ok = username in ("", self.username) and self._verify(response)
            except ValueError:
                ok = False
            self._new_challenges()
            if not ok:
                self.logins_failed += 1
                self._failures += 1
                self._blocked_until = now + min(MAX_BLOCK_S, 2 ** (self._failures - 1))
                return None
            self._failures = 0
            self.login_count += 1
            sid = self._rng.randbytes(8).hex()
            self._sessions[sid] = now
            return sid

    def touch(self, sid: str, now: float) -> bool:
        """True for a live session (and keep it alive); an invalid SID ends every session."""
        if sid in ("", NO_SID):
            return False
        with self.lock:
            last = self._sessions.get(sid)
            if last is not None and now - last < self.ttl_s:
                self._sessions[sid] = now
                return True
            self.invalid_sids += 1
            self._sessions.clear()
            return False

    def logout(self, sid: str) -> None:
        with self.lock:
            self._sessions.pop(sid, None)

    def end_all(self) -> None:
        with self.lock:
            self._sessions.clear()

    def active(self, now: float) -> int:
        with self.lock:
            return sum(1 for last in self._sessions.values() if now - last < self.ttl_s)
