"""HTTP client of the FRITZ!Box Smart Home (AHA) interface: the session and the requests.

Login follows AVM's "Session-IDs im FRITZ!Box Webinterface" note (``login_sid.lua?version=2``);
the challenge responses and the login back-off are in :mod:`.login`, the HTTP transport in
:mod:`.transport`. The box ends
*every* session of our address when it sees an invalid SID, so the session is never probed: it
is reused until the box itself answers that it is no longer valid (HTTP 403, or a SessionInfo
with SID ``0000000000000000``), then renewed once. A refused password is not retried until a
back-off period has passed, so a wrong config never locks the box's login for everyone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from collector.aio import AsyncClosing
from collector.config import FritzboxConfig
from collector.errors import (
    AuthError,
    CollectorError,
    ConfigError,
    ParseError,
    PermanentError,
    TransientError,
)
from collector.logs import register_secret
from collector.sources.backoff import (
    AUTH_BACKOFF_INITIAL_S,
    AUTH_BACKOFF_MAX_S,
    AuthBackoff,
    Clock,
    Sleep,
)
from collector.sources.fritzbox.login import (
    NO_SID,
    SessionInfo,
    is_session_expired_answer,
    login_response,
    md5_response,
    parse_session_info,
    pbkdf2_response,
)
from collector.sources.fritzbox.transport import (
    MAX_BODY_BYTES,
    HttpAnswer,
    build_http_client,
    fetch_capped,
    tls_verify,
)

# The login and transport parts live in .login and .transport; they are named here too,
# where the AHA client's users have always found them.
__all__ = [
    "AHA_PATH",
    "AUTH_BACKOFF_INITIAL_S",
    "AUTH_BACKOFF_MAX_S",
    "LOGIN_PATH",
    "MAX_BLOCK_WAIT_S",
    "MAX_BODY_BYTES",
    "NO_SID",
    "AuthBackoff",
    "Clock",
    "FritzboxClient",
    "HttpAnswer",
    "SessionInfo",
    "Sleep",
    "build_http_client",
    "fetch_capped",
    "is_session_expired_answer",
    "login_response",
    "md5_response",
    "parse_session_info",
    "pbkdf2_response",
    "tls_verify",
]

log = logging.getLogger(__name__)

LOGIN_PATH = "/login_sid.lua"
AHA_PATH = "/webservices/homeautoswitch.lua"
#: The longest login block (BlockTime) we wait out inside one call; longer ones fail the call.
MAX_BLOCK_WAIT_S = 15.0


# --- the client -----------------------------------------------------------------------------


_AHA_STATUS: dict[int, tuple[type[CollectorError], str]] = {
    # AHA-HTTP-Interface 1.3 "Fehlercodes"; 403 is handled before this table (session renewal).
    400: (PermanentError, "the box rejected the request as malformed (HTTP 400)"),
    404: (PermanentError, "no Smart Home interface at this address (HTTP 404)"),
    500: (TransientError, "internal error of the box (HTTP 500)"),
    503: (TransientError, "the box is busy (HTTP 503)"),
}


class FritzboxClient(AsyncClosing):
    """Session handling and the two AHA commands the collector needs.

    ``http`` is used as given (and not closed); without one the client builds its own.
    ``clock`` and ``sleep`` exist so the login back-off and BlockTime can be tested
    without waiting.
    """

    def __init__(
        self,
        config: FritzboxConfig,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_block_wait_s: float = MAX_BLOCK_WAIT_S,
        backoff: AuthBackoff | None = None,
    ) -> None:
        self._config = config
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(config)
        self._timeout = httpx.Timeout(config.timeout)
        self._base = _base_url(config.url)
        self._sleep = sleep
        self._max_block_wait_s = max_block_wait_s
        self._backoff = backoff if backoff is not None else AuthBackoff(clock=clock)
        self._lock = asyncio.Lock()
        self._sid: str | None = None
        self._rights: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def rights(self) -> Mapping[str, int]:
        """The rights of the current session (e.g. {"HomeAuto": 2}); empty before login."""
        return dict(self._rights)

    @property
    def logged_in(self) -> bool:
        return self._sid is not None

    async def aclose(self) -> None:
        """Log out (when logged in) and close our own HTTP client."""
        sid, self._sid = self._sid, None
        try:
            if sid is not None:
                try:
                    await fetch_capped(
                        self._http,
                        "GET",
                        self._base + LOGIN_PATH,
                        what=f"FRITZ!Box {self.name}: logout",
                        timeout=self._timeout,
                        params={"version": "2", "logout": "1", "sid": sid},
                    )
                    log.debug("FRITZ!Box %s: logged out", self.name)
                except CollectorError as err:
                    log.debug("FRITZ!Box %s: logout failed: %s", self.name, err)
        finally:
            if self._owns_http:
                await self._http.aclose()

    async def login(self) -> None:
        """Log in now unless a session exists (``check`` uses it to verify credentials)."""
        await self._session()

    async def get_devicelist(self) -> bytes:
        """``getdevicelistinfos``: the XML device list."""
        return await self._aha("getdevicelistinfos")

    async def get_devicestats(self, ain: str) -> bytes:
        """``getbasicdevicestats`` of one device (``ain`` with or without spaces)."""
        return await self._aha("getbasicdevicestats", ain=ain)

    # --- internals --------------------------------------------------------------------------

    async def _aha(self, switchcmd: str, *, ain: str | None = None) -> bytes:
        what = f"FRITZ!Box {self.name}: {switchcmd}" + (f" ain={ain}" if ain else "")
        self._backoff.check()
        sid = await self._session()
        for attempt in range(2):
            params = {"switchcmd": switchcmd, "sid": sid}
            if ain is not None:
                params["ain"] = ain
            answer = await fetch_capped(
                self._http,
                "GET",
                self._base + AHA_PATH,
                what=what,
                timeout=self._timeout,
                params=params,
            )
            if answer.status != 403 and not (
                answer.status == 200 and is_session_expired_answer(answer.body)
            ):
                return self._checked(answer, what)
            if attempt == 0:
                log.info("FRITZ!Box %s: the box ended our session; logging in again", self.name)
                sid = await self._renew(sid)
        if dict(self._rights).get("HomeAuto", 0) > 0:
            # the session says it may, yet the box refuses it at once: not a missing right
            reason = ("the box ends our sessions although they carry the Smart Home right "
                      "(another login with this user, or the box restarting?)")
        else:
            reason = f"user {self._config.username!r} lacks the Smart Home right"
        err = AuthError(f"{what}: refused with a fresh session; {reason}" + self._rights_note())
        period = self._backoff.failed(err)
        log.warning("%s; not asking the box again for %d s", err, period)
        raise err

    def _checked(self, answer: HttpAnswer, what: str) -> bytes:
        if answer.status == 200:
            return answer.body
        known = _AHA_STATUS.get(answer.status)
        if known is not None:
            cls, text = known
            raise cls(f"{what}: {text}")
        if answer.status >= 500:
            raise TransientError(f"{what}: HTTP {answer.status}")
        raise PermanentError(f"{what}: unexpected HTTP {answer.status}")

    def _rights_note(self) -> str:
        if not self._rights:
            return ""
        rights = ", ".join(f"{n}={a}" for n, a in self._rights)
        return f" (session rights: {rights})"

    async def _session(self) -> str:
        sid = self._sid
        if sid is not None:
            return sid
        async with self._lock:
            if self._sid is not None:
                return self._sid
            return await self._login()

    async def _renew(self, stale: str) -> str:
        async with self._lock:
            if self._sid is not None and self._sid != stale:
                return self._sid  # another request has already logged in again
            self._sid = None
            return await self._login()

    async def _login(self) -> str:
        """Challenge, (BlockTime), response. Callers hold ``self._lock``."""
        self._backoff.check()
        url = self._base + LOGIN_PATH
        what = f"FRITZ!Box {self.name}: login"
        first = await fetch_capped(
            self._http, "GET", url, what=what, timeout=self._timeout, params={"version": "2"}
        )
        challenge = parse_session_info(self._login_body(first, what))
        if challenge.block_time_s > 0:
            await self._wait_block(challenge.block_time_s)
        if not challenge.challenge:
            raise ParseError(f"{what}: SessionInfo without a challenge", part="Challenge")
        response = login_response(challenge.challenge, self._config.password.get_secret_value())
        second = await fetch_capped(
            self._http,
            "POST",
            url,
            what=what,
            timeout=self._timeout,
            params={"version": "2"},
            data={"username": self._config.username, "response": response},
        )
        info = parse_session_info(self._login_body(second, what))
        if not info.valid:
            text = (
                f"{what}: user {self._config.username!r} was refused (wrong user name or password)"
            )
            if info.block_time_s > 0:
                text += f"; the box blocks further logins for {info.block_time_s} s"
            err = AuthError(text)
            period = self._backoff.failed(err)
            log.warning("%s; not trying again for %d s", text, period)
            raise err
        self._backoff.succeeded()
        register_secret(info.sid)  # a session id is a credential: masked in every log line
        self._sid = info.sid
        self._rights = info.rights
        log.info(
            "FRITZ!Box %s: logged in as %s (%s)",
            self.name,
            self._config.username,
            "PBKDF2" if challenge.challenge.startswith("2$") else "MD5",
        )
        return info.sid

    @staticmethod
    def _login_body(answer: HttpAnswer, what: str) -> bytes:
        if answer.status == 200:
            return answer.body
        if answer.status >= 500:
            raise TransientError(f"{what}: HTTP {answer.status}")
        raise PermanentError(f"{what}: login_sid.lua answered HTTP {answer.status}")

    async def _wait_block(self, seconds: int) -> None:
        if seconds > self._max_block_wait_s:
            raise TransientError(
                f"FRITZ!Box {self.name}: the box blocks logins for another {seconds} s "
                "(after failed login attempts)",
                retry_after=float(seconds),
            )
        log.warning(
            "FRITZ!Box %s: the box blocks logins for %d s (after failed attempts); waiting",
            self.name,
            seconds,
        )
        await self._sleep(float(seconds))


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"fritzbox url {url!r}: expected http://host or https://host")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
