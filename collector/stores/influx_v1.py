"""InfluxDB 1.x through its ``/write`` and ``/query`` HTTP endpoints (gzip, Basic auth).

Requests go through the lean HTTP/1.1 client of ``collector.stores.http1`` (a fraction of a
general client's CPU per write on the collector's one event-loop thread); an injected
``httpx.AsyncClient`` is used as it is instead. Both give the store the same ``Answer``.

Credentials travel in an ``Authorization: Basic`` header, never as ``u=``/``p=`` query
parameters, so they cannot end up in a URL that a proxy, a log line or an error message shows.
The database is the user's: this store never creates it, it says clearly when it is missing.

The HTTP status mapping (:func:`error_for_status`) and the ``Retry-After`` parser are shared
with the v2 store.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from collector.errors import (
    StoreAuthError,
    StoreError,
    StoreRejected,
    StoreTooLarge,
    StoreUnavailable,
)
from collector.stores.base import StoreGarbled
from collector.stores.http1 import Answer, Http1Client, RequestFailed, RequestTimeout, Unreadable
from collector.tls import default_trust

log = logging.getLogger(__name__)

_MAX_MESSAGE = 500


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


def unreadable_answer(where: str, path: str, err: Unreadable) -> StoreGarbled:
    """The ``StoreGarbled`` of an answer the HTTP/1.1 client could not read."""
    if err.header is not None and err.header.lower() == "x-influxdb-error":
        return StoreGarbled(f"{where}: {path} answered with an unreadable error header "
                            f"(X-Influxdb-Error: {err.value[:_MAX_MESSAGE]})")
    return StoreGarbled(f"{where}: {path} answered unreadably: {str(err)[:_MAX_MESSAGE]}")


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
        self.gzip = gzip  # worth it over networks; on loopback it only costs CPU
        self._url = url.rstrip("/")
        self._shown_url = redact_url(self._url)
        self.database = database
        self.retention_policy = retention_policy
        self.name = f"influxdb-v1:{self._shown_url}/{database}"
        self._timeout = httpx.Timeout(timeout)
        self._auth = httpx.BasicAuth(username, password or "") if username is not None else None
        self._client = client
        self._http: Http1Client | None = None
        self._auth_header: dict[str, str] = {}
        if client is None:
            parts = urlsplit(self._url)
            if username is None and parts.username is not None:  # as httpx reads the URL
                username, password = unquote(parts.username), unquote(parts.password or "")
            if username is not None:
                pair = f"{username}:{password or ''}".encode()
                self._auth_header["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            # Plain HTTP never uses TLS, so it loads no CA bundle: that takes some 50 ms and
            # a few MB of memory per client.
            tls = parts.scheme.lower() == "https" and tls_verify(verify_tls, ca_file)
            self._http = Http1Client(self._url, timeout=timeout, tls=tls)
        self._where = f"InfluxDB at {self._shown_url}"

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

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        if self._http is None:
            return await self._request_httpx(method, path, params=params, content=content,
                                             headers=headers)
        try:
            return await self._http.request(method, path, params,
                                            {**(headers or {}), **self._auth_header}, content)
        except RequestTimeout as err:
            raise StoreUnavailable(f"{self._where}: {path} timed out") from err
        except Unreadable as err:
            raise unreadable_answer(self._where, path, err) from err
        except RequestFailed as err:  # refused, reset, closed, unknown host, TLS refused
            raise StoreUnavailable(f"{self._where}: {path} failed: {err.kind}: {err}") from err

    async def _request_httpx(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> Answer:
        assert self._client is not None
        try:
            resp = await self._client.request(
                method,
                f"{self._url}{path}",
                params=params,
                content=content,
                headers=headers,
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
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
                f"{self._where}: {path} failed: {type(err).__name__}: {err}"
            ) from err
        return Answer(resp.status_code, resp.headers, resp.content)

    def _error(self, resp: Answer) -> StoreError:
        message = server_message(resp.body, keys=("error", "message"))
        if not message:
            message = resp.headers.get("X-Influxdb-Error", "")
        if resp.status == 404:
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
            resp.status,
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
        if not 200 <= resp.status < 300:
            err = self._error(resp)
            log.debug("write of %d lines failed: %s", n, err)
            raise err

    async def check(self) -> str:
        """Ping, then an empty write.

        InfluxDB 1.x checks the database, the retention policy and the write permission before
        it reads the body, and stores nothing for an empty one.
        """
        ping = await self._request("GET", "/ping", params={})
        if ping.status == 404:
            raise StoreUnavailable(f"{self._where}: /ping answered 404 (not an InfluxDB URL?)")
        if ping.status >= 300:
            raise self._error(ping)
        version = ping.headers.get("X-Influxdb-Version", "unknown version")
        probe = await self._request(
            "POST",
            "/write",
            params=self._params(),
            content=b"",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        if not 200 <= probe.status < 300:
            raise self._error(probe)
        rp = f", retention policy {self.retention_policy!r}" if self.retention_policy else ""
        return f"InfluxDB {version} at {self._shown_url}: database {self.database!r}{rp} writable"

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
