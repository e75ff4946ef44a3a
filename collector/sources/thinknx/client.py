"""HTTP client of the Thinknx Integration Kit, local and cloud.

Local ("Local based integration"): ``http(s)://<server>:5051/api/V1/<controller>?...&auth=``
``basic|digest`` with HTTP Basic or Digest credentials, or ``&auth=basic&user=..&pass=..``
(plain HTTP only). Cloud ("Cloud based integration"): ``https://data.thinknx.eu/<KEY>/api/V1/
<controller>?...``; the key grants access on its own, so it is a secret like a password.
URLs that carry the key or a password never go into a message: every text is built from
``safe_url``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping
from urllib.parse import quote, quote_plus, urlsplit

import httpx

from collector.aio import AsyncClosing
from collector.config import ThinknxConfig
from collector.errors import (
    AuthError,
    CollectorError,
    ParseError,
    PermanentError,
    TransientError,
)
from collector.logs import register_secret
from collector.sources.backoff import AuthBackoff, Clock, Sleep
from collector.sources.thinknx.parse import error_text
from collector.tls import verify_for

log = logging.getLogger(__name__)

API_PATH = "/api/V1/"
#: An answer of the Integration Kit is a few hundred bytes.
MAX_BODY_BYTES = 256 * 1024
#: 429 answers waited out inside one call, and the longest Retry-After honoured in it.
MAX_RATE_RETRIES = 3
MAX_RETRY_AFTER_S = 30.0
DEFAULT_RETRY_AFTER_S = 1.0

#: HTTP status -> (error class, meaning); the Integration Kit's list of "error status codes".
#: 401 is what Basic/Digest servers send with a challenge; 403 "authentication information
#: is incorrect".
STATUS_ERRORS: dict[int, tuple[type[CollectorError], str]] = {
    400: (PermanentError, "the request was refused as malformed (HTTP 400)"),
    401: (AuthError, "the user name or password was refused (HTTP 401)"),
    403: (AuthError, "the authentication information is incorrect (HTTP 403)"),
    404: (PermanentError, "the device could not be found (HTTP 404)"),
    429: (TransientError, "the request exceeded the rate limit (HTTP 429)"),
    500: (TransientError, "something went wrong on the server (HTTP 500)"),
}
#: JSON error bodies -> error class (a device that does not answer on the bus may later).
BODY_ERRORS: dict[str, type[CollectorError]] = {
    "device not found": PermanentError,
    "params errors": PermanentError,
    "impossible to execute": TransientError,
}
#: The statuses of the documented error answers: every controller of "API URLs" lists
#: "Error Response Code 400 or 404" with one of the bodies above.
REFUSAL_STATUSES = frozenset({400, 404})


class Refusal(CollectorError):
    """Marks a documented error answer (``answer`` is its text): what a server says when
    asked for something an object does not have ("Not all capabilities are available to all
    the devices", "Devices capabilities")."""

    answer: str = ""


class PermanentRefusal(Refusal, PermanentError):
    """HTTP 400/404 with "device not found" or "params errors"."""


class TransientRefusal(Refusal, TransientError):
    """HTTP 400 with "impossible to execute"."""


class Unreachable(TransientError):
    """No HTTP answer at all: a timeout, a refused or a broken connection."""


def _ssl(config: ThinknxConfig) -> ssl.SSLContext | bool:
    """The server's certificate check; a local server on plain HTTP loads no CA bundle
    (collector/tls.py)."""
    url = config.url if config.url is not None else config.cloud_url
    return verify_for(f"thinknx {config.name}", (url,), verify_tls=config.verify_tls,
                      ca_file=config.ca_file)


def build_http_client(config: ThinknxConfig) -> httpx.AsyncClient:
    """One client for every request of a server; its pool is as large as the concurrency."""
    limits = httpx.Limits(max_connections=config.max_concurrency,
                          max_keepalive_connections=config.max_concurrency)
    return httpx.AsyncClient(verify=_ssl(config), timeout=httpx.Timeout(config.timeout),
                             limits=limits, follow_redirects=False)


def error_for(status: int, body: bytes, what: str, retry_after: float | None = None
              ) -> CollectorError:
    """The typed error of a non-200 answer, naming ``what`` (never the URL)."""
    text = error_text(body)
    if 300 <= status < 400:  # "HTTP requests will be redirected to HTTPS when possible"
        return PermanentError(f"{what}: the server redirects (HTTP {status}); "
                              "use its https:// address in url")
    cls, meaning = STATUS_ERRORS.get(
        status, (TransientError if status >= 500 else PermanentError, f"HTTP {status}"))
    if text is not None and cls is not AuthError and status != 429:
        cls = BODY_ERRORS.get(text, cls)
        meaning = f"{text!r} (HTTP {status})"
    message = f"{what}: {meaning}"
    if text in BODY_ERRORS and status in REFUSAL_STATUSES:
        refusal = (TransientRefusal(message) if cls is TransientError
                   else PermanentRefusal(message))
        refusal.answer = text
        return refusal
    if cls is TransientError:
        return TransientError(message, retry_after=retry_after)
    return cls(message)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: wait the default
    return seconds if seconds >= 0 else None


class ThinknxClient(AsyncClosing):
    """The requests of one server (local or cloud). ``http`` is used as given, not closed."""

    def __init__(
        self,
        config: ThinknxConfig,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        backoff: AuthBackoff | None = None,
    ) -> None:
        self._config = config
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(config)
        self._sleep = sleep
        self._backoff = backoff if backoff is not None else AuthBackoff(clock=clock)
        self._auth: httpx.Auth | None = None
        self._params: dict[str, str] = {}
        self._secrets: tuple[str, ...] = ()
        if config.cloud_key is not None:
            key = config.cloud_key.get_secret_value()
            register_secret(key)
            self._secrets = (key,)
            self._base = config.cloud_url.rstrip("/") + "/" + key + API_PATH
            self._safe_base = config.cloud_url.rstrip("/") + "/***" + API_PATH
        else:
            assert config.url is not None and config.username and config.password is not None
            password = config.password.get_secret_value()
            # as typed, and as it appears in a logged URL (params mode: percent-encoded)
            encoded = str(httpx.QueryParams({"pass": password}))[len("pass="):]
            self._secrets = (password, encoded, quote(password, safe=""), quote_plus(password))
            for secret in self._secrets:
                register_secret(secret)
            self._base = config.url.rstrip("/") + API_PATH
            self._safe_base = self._base
            self._params = {"auth": "basic" if config.auth == "params" else config.auth}
            if config.auth == "params":
                self._params |= {"user": config.username, "pass": password}
            elif config.auth == "basic":
                self._auth = httpx.BasicAuth(config.username, password)
            else:
                self._auth = httpx.DigestAuth(config.username, password)

    @property
    def host(self) -> str:
        """The server's stable name: its host, or "cloud" (never the key)."""
        if self._config.cloud_key is not None:
            return "cloud"
        return urlsplit(self._config.url or "").hostname or "server"

    def safe_url(self, controller: str) -> str:
        return self._safe_base + controller

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def get(self, controller: str, params: Mapping[str, str] | None = None, *,
                  what: str) -> bytes:
        """The body of a 200 answer of ``controller``; other answers become typed errors.

        A refused password is not asked again before the back-off period has passed; 429 is
        waited out (Retry-After, at most ``MAX_RETRY_AFTER_S``) up to ``MAX_RATE_RETRIES``
        times; a longer Retry-After fails the call with it as ``retry_after``.
        """
        self._backoff.check()
        query = dict(params or {}) | self._params
        for attempt in range(MAX_RATE_RETRIES + 1):
            status, body, retry_after = await self._fetch(controller, query, what)
            if status == 200:
                self._backoff.succeeded()
                return body
            wait = _retry_after(retry_after) if status == 429 else None
            error = error_for(status, body, what, wait)
            if isinstance(error, AuthError):
                period = self._backoff.failed(error)
                log.warning("%s: %s; not asking again for %.0f s", self.safe_url(controller),
                            error, period)
                raise error
            delay = wait if wait is not None else DEFAULT_RETRY_AFTER_S
            if status != 429 or attempt == MAX_RATE_RETRIES or delay > MAX_RETRY_AFTER_S:
                raise error  # a long Retry-After is left to the scheduler (retry_after)
            log.info("%s: rate limited, waiting %.1f s", self.safe_url(controller), delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self, controller: str, query: Mapping[str, str], what: str
                     ) -> tuple[int, bytes, str | None]:
        """One GET: status, body (at most ``MAX_BODY_BYTES``) and Retry-After.

        Network errors and timeouts become ``Unreachable``; their texts name the object and
        the safe URL (httpx's own texts of transport errors carry no URL).
        """
        where = f"{what}: {self.safe_url(controller)}"
        try:
            async with self._http.stream(
                "GET", self._base + controller, params=query,
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=httpx.Timeout(self._config.timeout),
            ) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise ParseError(f"{where}: answer exceeds {MAX_BODY_BYTES} bytes")
                    chunks.append(chunk)
                return resp.status_code, b"".join(chunks), resp.headers.get("retry-after")
        except httpx.TimeoutException as err:
            raise Unreachable(f"{where}: no answer within the timeout "
                              f"({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise Unreachable(f"{where}: {type(err).__name__}: {_no_secret(str(err), self)}"
                              ) from None
        except httpx.HTTPError as err:
            raise TransientError(f"{where}: {type(err).__name__}: {_no_secret(str(err), self)}"
                                 ) from None


def _no_secret(text: str, client: ThinknxClient) -> str:
    """An httpx text with the key and the password replaced by "***"."""
    for secret in client._secrets:
        text = text.replace(secret, "***")
    return text[:200]
