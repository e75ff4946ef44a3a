"""HTTP client of the FRITZ!Box Smart Home (AHA) interface.

Login follows AVM's "Session-IDs im FRITZ!Box Webinterface" note (``login_sid.lua?version=2``):
PBKDF2 challenges (``2$iter1$salt1$iter2$salt2``) and the older MD5 challenge. The box ends
*every* session of our address when it sees an invalid SID, so the session is never probed: it
is reused until the box itself answers that it is no longer valid (HTTP 403, or a SessionInfo
with SID ``0000000000000000``), then renewed once. A refused password is not retried until a
back-off period has passed, so a wrong config never locks the box's login for everyone.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
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
from collector.sources.fritzbox.xmldoc import parse_xml

log = logging.getLogger(__name__)

LOGIN_PATH = "/login_sid.lua"
AHA_PATH = "/webservices/homeautoswitch.lua"
NO_SID = "0000000000000000"
#: Larger answers are refused: a device list of a full box is well below 1 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: The longest login block (BlockTime) we wait out inside one call; longer ones fail the call.
MAX_BLOCK_WAIT_S = 15.0
#: First and longest pause after refused credentials before the box is asked again.
AUTH_BACKOFF_INITIAL_S = 60.0
AUTH_BACKOFF_MAX_S = 3600.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]



# --- pure functions -------------------------------------------------------------------------


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


# --- transport, shared with the TR-064 client -------------------------------------


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes
    content_type: str


@functools.cache
def _trusted_tls() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CA bundle, or $SSL_CERT_FILE/DIR), built
    once and shared by every client: each load of the bundle costs about 1 MB of memory."""
    return httpx.create_ssl_context()


@functools.cache
def _unused_tls() -> ssl.SSLContext:
    """For a box reached over plain HTTP only. Redirects are not followed, so no TLS
    connection is ever made and the CA bundle is not loaded; the context still requires a
    verified certificate and host name, so TLS would fail rather than trust anyone."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def tls_verify(config: FritzboxConfig) -> ssl.SSLContext | bool:
    """How the box's certificate is checked: against ``ca_file``, not at all (an explicit
    ``verify_tls = false``), or against the shared default trust store. A box reached over
    plain HTTP only gets a context that loads no CA bundle and trusts nobody."""
    if config.ca_file is not None:
        try:
            return ssl.create_default_context(cafile=str(config.ca_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"fritzbox {config.name}: cannot load ca_file {config.ca_file}: {err}"
            ) from err
    if not config.verify_tls:
        return False
    # plain HTTP only: the default TR-064 URL has the scheme of ``url``
    if all(urlsplit(u).scheme.lower() == "http" for u in (config.url, config.tr064_url) if u):
        return _unused_tls()
    return _trusted_tls()


def build_http_client(config: FritzboxConfig) -> httpx.AsyncClient:
    """An AsyncClient honouring ``verify_tls``, ``ca_file`` and ``timeout``."""
    return httpx.AsyncClient(verify=tls_verify(config), timeout=httpx.Timeout(config.timeout))


async def fetch_capped(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    timeout: httpx.Timeout,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> HttpAnswer:
    """One request; the body is read up to ``max_bytes`` (more is a ParseError).

    Network errors and timeouts become TransientError. ``what`` names the request in
    messages; it must not contain secrets (URLs with a SID never go into a message).
    """
    try:
        async with http.stream(
            method,
            url,
            params=params,
            data=data,
            content=content,
            headers=headers,
            auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            timeout=timeout,
        ) as resp:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ParseError(f"{what}: answer of {declared} bytes exceeds {max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ParseError(f"{what}: answer exceeds {max_bytes} bytes")
                chunks.append(chunk)
            content_type = resp.headers.get("content-type", "")
            return HttpAnswer(resp.status_code, b"".join(chunks), content_type)
    except httpx.TimeoutException as err:
        raise TransientError(
            f"{what}: no answer within the timeout ({type(err).__name__})"
        ) from err
    except httpx.HTTPError as err:
        # str(err) of transport errors is the OS reason (e.g. "connection refused"), never the URL.
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in str(err):
            hint = (" (a box with its own self-signed certificate needs ca_file = the box's "
                    "certificate, or verify_tls = false)")
        raise TransientError(f"{what}: {type(err).__name__}: {err}{hint}") from err


class AuthBackoff:
    """Remembers refused credentials and keeps us from asking the box again too soon.

    The first refusal blocks for ``initial_s``; every refusal after a blocked period doubles
    it up to ``max_s``; a success resets it.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        initial_s: float = AUTH_BACKOFF_INITIAL_S,
        max_s: float = AUTH_BACKOFF_MAX_S,
    ) -> None:
        self._clock = clock
        self._initial_s = initial_s
        self._max_s = max_s
        self._next_s = initial_s
        self._until = 0.0
        self._error: AuthError | None = None

    @property
    def error(self) -> AuthError | None:
        return self._error

    def check(self) -> None:
        """Raise the remembered AuthError while the back-off period lasts."""
        if self._error is not None and self._clock() < self._until:
            raise AuthError(str(self._error))

    def failed(self, error: AuthError) -> float:
        """Record a refusal; returns the seconds until the box may be asked again.

        Refusals that arrive while a period is running (concurrent requests of one round)
        do not lengthen it again.
        """
        now = self._clock()
        if self._error is not None and now < self._until:
            return self._until - now
        period = self._next_s
        self._error = error
        self._until = now + period
        self._next_s = min(period * 2, self._max_s)
        return period

    def succeeded(self) -> None:
        self._error = None
        self._until = 0.0
        self._next_s = self._initial_s


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
        err = AuthError(
            f"{what}: refused with a fresh session; user {self._config.username!r} lacks "
            "the Smart Home right" + self._rights_note()
        )
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
