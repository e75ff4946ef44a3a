"""HTTP client of the Overkiz end-user API (cloud and local gateway).

Cloud: ``POST /login`` with the form fields ``userId``/``userPassword`` opens a session whose
id comes back as the ``JSESSIONID`` cookie (spec: "POST Login /login"). The session is reused
until the server answers "Not authenticated", then renewed once per request. Refused
credentials are not tried again before a back-off that starts at minutes and doubles, because
the service bans accounts that keep failing ("Too many attempts ..., temporarily banned").

Local API: the gateway serves ``/enduser-mobile-web/1/enduserAPI`` with a bearer token and has
no history endpoints.

Every request goes through the per-session rate limiter (limits.py): a request the server
would reject for rate is not sent; the caller gets ``OverkizRateLimited`` with the wait. A
limited call counts only once the service answered it: one that timed out or met a 5xx
(maintenance, a proxy) was never counted by the server and does not spend the period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from collector.errors import ConfigError, ParseError, TransientError
from collector.sources.overkiz.errors import (
    OverkizBadCredentials,
    OverkizBanned,
    OverkizNotAuthenticated,
    OverkizRateLimited,
    error_for,
)
from collector.sources.overkiz.limits import Category, RateLimiter

log = logging.getLogger(__name__)

CLOUD_PATH = "/enduser-mobile-web/enduserAPI"
LOCAL_PATH = "/enduser-mobile-web/1/enduserAPI"


#: The timeout of a client built without one; a source hands in its configured ``timeout``.
TIMEOUT = httpx.Timeout(20.0, connect=10.0)
#: A wait shorter than this is slept inside the call (the 1 s event fetch); longer ones fail.
MAX_INLINE_WAIT_S = 2.0
#: First and longest pause after refused credentials.
AUTH_BACKOFF_INITIAL_S = 300.0
AUTH_BACKOFF_MAX_S = 6 * 3600.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def api_base(url: str, *, local: bool) -> str:
    """The API root for a server base ``url``; a url that already ends in the path is kept."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"overkiz url must be an http(s) address, not {url!r}")
    path = LOCAL_PATH if local else CLOUD_PATH
    root = url.rstrip("/")
    for known in (CLOUD_PATH, LOCAL_PATH):
        if root.endswith(known):
            root = root[: -len(known)]
    return root + path


def device_segment(device_url: str) -> str:
    """A deviceURL as ONE path segment: ``io://1234-5678-9012/123#1`` -> ``io%3A%2F%2F...%231``."""
    return quote(device_url, safe="")


class OverkizClient:
    """Requests to one account (cloud) or one gateway (local)."""

    def __init__(
        self,
        base: str,
        http: httpx.AsyncClient,
        limiter: RateLimiter,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        local: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.base = base
        self._timeout = timeout
        #: The gateway's local API (no history); a token alone means bearer auth, no login.
        self.local = local
        self._http = http
        self._limiter = limiter
        self._username = username
        self._password = password
        self._token = token
        self._session: str | None = None
        self._clock = clock
        self._sleep = sleep
        self._auth_blocked_until = 0.0
        self._auth_backoff_s = AUTH_BACKOFF_INITIAL_S
        self._login_lock = asyncio.Lock()
        self.requests = 0

    # --- session ----------------------------------------------------------------------------

    async def login(self) -> None:
        """Open a cloud session; refused credentials block further logins for a while."""
        if self._token is not None:
            return
        now = self._clock()
        if now < self._auth_blocked_until:
            raise OverkizBadCredentials(
                "Overkiz login refused earlier; not retrying for another "
                f"{self._auth_blocked_until - now:.0f} s"
            )
        form = {"userId": self._username or "", "userPassword": self._password or ""}
        response = await self._send("POST", "/login", data=form)
        if response.status_code >= 300:
            error = error_for(response.status_code, response.content, retry_after=_retry(response))
            if isinstance(error, (OverkizBadCredentials, OverkizBanned)):
                self._auth_blocked_until = self._clock() + self._auth_backoff_s
                log.error(
                    "Overkiz refused the login of this account; next attempt in %.0f s",
                    self._auth_backoff_s,
                )
                self._auth_backoff_s = min(self._auth_backoff_s * 2, AUTH_BACKOFF_MAX_S)
            raise error
        session = response.cookies.get("JSESSIONID")
        if not session:
            raise ParseError("Overkiz login answered without a session cookie", part="JSESSIONID")
        self._session = session
        self._auth_backoff_s = AUTH_BACKOFF_INITIAL_S
        log.info("Overkiz session opened")

    async def _one_login(self) -> None:
        """Log in for the requests that find no session: jobs starting together share one
        login (a second login would replace the session the event listener belongs to)."""
        async with self._login_lock:
            if self._session is None:
                await self.login()

    # --- requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        category: Category | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send one API request and return its decoded JSON (None for an empty answer)."""
        for attempt in (1, 2):
            if self._token is None and self._session is None:
                await self._one_login()
            previous = await self._wait_for(category) if category is not None else None
            try:
                response = await self._send(method, path, json_body=json_body)
            except (TransientError, asyncio.CancelledError):
                if category is not None:
                    self._limiter.unanswered(category, previous)
                raise
            if category is not None and response.status_code >= 500:
                self._limiter.unanswered(category, previous)
            if response.status_code < 300:
                answer = _json(response, path)
                if category is not None:
                    self._limiter.completed(category)
                return answer
            error = error_for(response.status_code, response.content, retry_after=_retry(response))
            relogin = self._token is None and attempt == 1
            if isinstance(error, OverkizNotAuthenticated) and relogin:
                if category is not None:  # refused before it was looked at: not counted
                    self._limiter.unanswered(category, previous)
                log.info("Overkiz session expired; logging in again")
                self._session = None
                continue
            raise error
        raise TransientError("Overkiz session could not be renewed")  # pragma: no cover

    def next_allowed_s(self, category: Category) -> float:
        """Seconds until a call of ``category`` is allowed (0: now)."""
        return self._limiter.wait_s(category)

    async def _wait_for(self, category: Category) -> float | None:
        """Wait for (or refuse) a call of ``category``; return the call before it."""
        wait = self._limiter.wait_s(category)
        if wait > 0 and (wait > MAX_INLINE_WAIT_S or self._sleep is None):
            raise OverkizRateLimited(
                f"Overkiz {category.label} limit: next call allowed in {wait:.1f} s",
                retry_after=wait,
            )
        if wait > 0 and self._sleep is not None:
            await self._sleep(wait)
        return self._limiter.record(category)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        elif self._session is not None and path != "/login":
            headers["Cookie"] = f"JSESSIONID={self._session}"
        self.requests += 1
        try:
            return await self._http.request(
                method,
                self.base + path,
                headers=headers,
                data=data,
                json=json_body,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"Overkiz {method} {path}: {type(exc).__name__}") from exc


def _retry(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 3600.0) if value is not None else None
    except ValueError:
        return None


def _json(response: httpx.Response, path: str) -> Any:
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ParseError("Overkiz answered with something that is not JSON", part=path) from exc
