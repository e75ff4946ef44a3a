"""InfluxDB 1.x through its ``/write`` and ``/query`` HTTP endpoints (gzip, Basic auth).

Requests go through httpx: the store's own ``httpx.AsyncClient`` (a small keep-alive pool,
one per event loop, since connections belong to the loop that opened them), or an injected
client used as it is.

Credentials travel in an ``Authorization: Basic`` header, never as ``u=``/``p=`` query
parameters, so they cannot end up in a URL that a proxy, a log line or an error message shows.
The database is the user's: this store never creates it, it says clearly when it is missing.

The HTTP status mapping (:func:`error_for_status`) and the ``Retry-After`` parser are shared
with the v2 store.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from collector import __version__
from collector.errors import (
    ConfigError,
    StoreAuthError,
    StoreError,
    StoreRejected,
    StoreTooLarge,
    StoreUnavailable,
)
from collector.stores.base import StoreGarbled
from collector.tls import default_trust, no_tls

log = logging.getLogger(__name__)

_MAX_MESSAGE = 500
USER_AGENT = f"collector/{__version__}"
# Up to four writes at once; an idle connection is kept 5 s (httpx's default), shorter than
# the idle timeout of the usual reverse proxies, so that a server rarely closes one under us.
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=5.0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def server_message(body: str | bytes | None, *, keys: Sequence[str] = ("message", "error")) -> str:
    """The server's own error text: ``message``/``error`` of a JSON body, else the raw text."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_MESSAGE]
    if isinstance(data, dict):
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:_MAX_MESSAGE]
    return text[:_MAX_MESSAGE]


def error_for_status(
    status: int, message: str, *, retry_after: float | None, where: str
) -> StoreError:
    """Map an unsuccessful HTTP answer of an InfluxDB write to our typed store error.

    400/422 are the only answers that blame the lines; anything else we do not know keeps the
    lines in the spool (StoreUnavailable) so a misconfigured bucket or database loses nothing.
    """
    detail = f": {message}" if message else ""
    if status in (400, 422):
        return StoreRejected(
            message or f"{where} rejected the lines (HTTP {status})", status=status
        )
    if status == 413:
        return StoreTooLarge(f"{where} refused the batch as too large (HTTP 413){detail}")
    if status in (401, 403):
        what = "refused the credentials" if status == 401 else "denied write permission"
        return StoreAuthError(f"{where} {what} (HTTP {status}){detail}")
    if status == 429:
        return StoreUnavailable(
            f"{where} asked us to slow down (HTTP 429){detail}", retry_after=retry_after
        )
    return StoreUnavailable(f"{where} answered HTTP {status}{detail}", retry_after=retry_after)


def garbled_answer(where: str, path: str, err: httpx.RemoteProtocolError) -> StoreGarbled | None:
    """A ``StoreGarbled`` when the server did answer, but unreadably; None when it went away
    without an answer (an outage, retried as such)."""
    text = str(err)
    if not text or text.startswith("Server disconnected"):
        return None
    # h11 shows the offending header as the bytes' repr, control characters escaped
    header = text.lower().find("x-influxdb-error:")
    if header >= 0:
        detail = text[header + len("x-influxdb-error:"):].strip().rstrip("\")'")
        detail = detail.replace("\\'", "'")  # the repr's quoting, not the server's
        return StoreGarbled(f"{where}: {path} answered with an unreadable error header "
                            f"(X-Influxdb-Error: {detail[:_MAX_MESSAGE]})")
    return StoreGarbled(f"{where}: {path} answered unreadably: {text[:_MAX_MESSAGE]}")


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def tls_verify(verify_tls: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    """The certificate check of an ``https://`` InfluxDB: none, ``ca_file``'s trust (an
    unreadable file raises OSError or ssl.SSLError) or the default trust store that all
    clients share (collector/tls.py)."""
    if not verify_tls:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return default_trust()


def _cause(err: BaseException) -> str:
    """The text of the innermost cause: the refusal or TLS failure behind httpx's
    ``All connection attempts failed`` (httpcore re-raises it ``from None``, so the chain
    goes on through the context)."""
    while True:
        inner = err.__cause__ or err.__context__
        if inner is None:
            return str(err) or type(err).__name__
        err = inner


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = 0
    if scheme not in ("http", "https") or not parts.hostname or port == 0:
        shown = f"{scheme}://{parts.hostname or ''}{parts.path}"  # no user:password@
        raise ConfigError(f"URL {shown!r}: needs http:// or https://, a host and a valid port")


class InfluxV1Store:
    """Writes line protocol to an InfluxDB 1.x database (``POST /write``, precision ns)."""

    def __init__(
        self,
        url: str,
        database: str,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 10.0,
        verify_tls: bool = True,
        ca_file: str | None = None,
        client: httpx.AsyncClient | None = None,
        gzip: bool = True,
    ) -> None:
        _check_url(url)
        self.gzip = gzip  # worth it over networks; on loopback it only costs CPU
        parts = urlsplit(url)
        if username is None and parts.username is not None:  # as httpx reads the URL
            username, password = unquote(parts.username), unquote(parts.password or "")
        self._url = redact_url(url.rstrip("/"))  # requests carry no user:password@
        self._shown_url = self._url
        self.database = database
        self.retention_policy = retention_policy
        self.name = f"influxdb-v1:{self._shown_url}/{database}"
        self._timeout = httpx.Timeout(timeout)
        self._auth = httpx.BasicAuth(username, password or "") if username is not None else None
        # Plain HTTP never uses TLS, so it loads no CA bundle: that takes some 50 ms and a
        # few MB of memory per client.
        self._verify = (tls_verify(verify_tls, ca_file) if parts.scheme.lower() == "https"
                        else no_tls())
        self._owns_client = client is None
        self._http = client if client is not None else self._new_client()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy = 0  # requests under way on the own client
        self._closed = False
        self._where = f"InfluxDB at {self._shown_url}"

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=self._verify, timeout=self._timeout, limits=LIMITS, auth=self._auth,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})

    def __repr__(self) -> str:
        return (
            f"InfluxV1Store(url={self._shown_url!r}, database={self.database!r}, "
            f"retention_policy={self.retention_policy!r})"
        )

    def _params(self) -> dict[str, str]:
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        return params

    def _client(self) -> httpx.AsyncClient:
        """The client for the running event loop: an own client's connections belong to the
        loop that opened them, so another loop gets a new client (the old one's sockets
        close when it is collected)."""
        if not self._owns_client:
            return self._http
        if self._closed:
            raise RuntimeError("the InfluxDB store is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:
                self._http, self._busy = self._new_client(), 0
            self._loop = loop
        return self._http

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        http = self._client()
        self._busy += 1
        try:
            return await http.request(
                method,
                f"{self._url}{path}",
                params=params,
                content=content,
                headers=headers,
                auth=httpx.USE_CLIENT_DEFAULT if self._owns_client or self._auth is None
                else self._auth,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as err:
            raise StoreUnavailable(f"{self._where}: {path} timed out") from err
        except httpx.RemoteProtocolError as err:
            garbled = garbled_answer(self._where, path, err)
            if garbled is not None:
                raise garbled from err
            raise StoreUnavailable(
                f"{self._where}: {path} failed: {type(err).__name__}: {err}"
            ) from err
        except httpx.HTTPError as err:  # connection refused, reset, TLS failure, ...
            raise StoreUnavailable(
                f"{self._where}: {path} failed: {type(err).__name__}: {_cause(err)}"
            ) from err
        finally:
            if http is self._http:  # not a client of an event loop left behind
                self._busy -= 1
                if self._closed and not self._busy:
                    await http.aclose()  # closed mid-request: now that the answer is in

    def _error(self, resp: httpx.Response) -> StoreError:
        message = server_message(resp.content, keys=("error", "message"))
        if not message:
            message = resp.headers.get("X-Influxdb-Error", "")
        if resp.status_code == 404:
            # /write answers 404 only for a missing database ("database not found: ...")
            return StoreUnavailable(
                f"{self._where}: database {self.database!r} does not exist "
                f"(create it with CREATE DATABASE; server said: {message or 'not found'})",
                retry_after=None,
            )
        if "retention policy not found" in message:
            return StoreUnavailable(
                f"{self._where}: retention policy {self.retention_policy!r} does not exist on "
                f"database {self.database!r} (server said: {message})"
            )
        return error_for_status(
            resp.status_code,
            message,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            where=self._where,
        )

    async def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        await self.write_body("\n".join(lines).encode("utf-8"), len(lines))

    async def write_body(self, body: bytes, n: int) -> None:
        """``write`` for ``n`` lines already joined by newlines and encoded as UTF-8 (as
        the spool keeps them): no string per line on the way."""
        if not body:
            return
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        resp = await self._request("POST", "/write", params=self._params(), content=body,
                                   headers=headers)
        if not 200 <= resp.status_code < 300:
            err = self._error(resp)
            log.debug("write of %d lines failed: %s", n, err)
            raise err

    async def check(self) -> str:
        """Ping, then an empty write.

        InfluxDB 1.x checks the database, the retention policy and the write permission before
        it reads the body, and stores nothing for an empty one.
        """
        ping = await self._request("GET", "/ping", params={})
        if ping.status_code == 404:
            raise StoreUnavailable(f"{self._where}: /ping answered 404 (not an InfluxDB URL?)")
        if ping.status_code >= 300:
            raise self._error(ping)
        version = ping.headers.get("X-Influxdb-Version", "unknown version")
        probe = await self._request(
            "POST",
            "/write",
            params=self._params(),
            content=b"",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        if not 200 <= probe.status_code < 300:
            raise self._error(probe)
        rp = f", retention policy {self.retention_policy!r}" if self.retention_policy else ""
        return f"InfluxDB {version} at {self._shown_url}: database {self.database!r}{rp} writable"

    async def aclose(self) -> None:
        """Close the own client; a request under way finishes first (its connection closes
        once its answer is in). An injected client stays open: it is its owner's."""
        if not self._owns_client or self._closed:
            return
        self._closed = True
        if self._loop not in (None, asyncio.get_running_loop()):
            return  # its connections belong to another event loop: they close when collected
        if not self._busy:
            await self._http.aclose()
