"""InfluxDB 2.x / 3.x / 1.8+ through the ``/api/v2/write`` API of ``influxdb-client``.

The library's SYNCHRONOUS write path posts once: its urllib3 pool is built with
``retries=False`` (the client's default, passed explicitly here), and the ``WritesRetry``
strategy with backoff is used only by the batching write mode, which we do not use. The spool
does all retrying, honouring ``Retry-After``. With ``retries=False`` urllib3 raises its own
connection errors (``NewConnectionError``, ``ReadTimeoutError``, ``ProtocolError``) instead of
``MaxRetryError``; TLS failures arrive as ``ApiException(status=0)``.

The token only ever lives in the library's ``Authorization: Token`` header; our messages and
``repr`` never include it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from collector.errors import StoreError, StoreUnavailable
from collector.stores.influx_v1 import (
    error_for_status,
    parse_retry_after,
    redact_url,
    server_message,
)

log = logging.getLogger(__name__)


class InfluxV2Store:
    """Writes line protocol to a bucket (precision ns, gzip body, no library retries)."""

    def __init__(
        self,
        url: str,
        org: str,
        bucket: str,
        token: str,
        *,
        timeout: float = 10.0,
        verify_tls: bool = True,
        ca_file: str | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._shown_url = redact_url(self._url)
        self.org = org
        self.bucket = bucket
        self.name = f"influxdb-v2:{self._shown_url}/{org}/{bucket}"
        self._where = f"InfluxDB at {self._shown_url}"
        self._token = token
        self._timeout_ms = int(timeout * 1000)
        self._verify_tls = verify_tls
        self._ca_file = ca_file
        self._client = self._make_client(gzip=True)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def __repr__(self) -> str:
        return f"InfluxV2Store(url={self._shown_url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def _make_client(self, *, gzip: bool) -> Any:
        return InfluxDBClient(
            url=self._url,
            token=self._token,
            org=self.org,
            timeout=self._timeout_ms,  # milliseconds; urllib3 Timeout(total=...) per request
            enable_gzip=gzip,
            verify_ssl=self._verify_tls,
            ssl_ca_cert=self._ca_file,
            retries=False,
        )

    def _post(self, body: bytes) -> None:
        self._write_api.write(
            bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.NS
        )

    async def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode("utf-8")
        try:
            await asyncio.to_thread(self._post, body)
        except ApiException as err:
            mapped = self._map_api_exception(err)
            log.debug("write of %d lines failed: %s", len(lines), mapped)
            raise mapped from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise self._map_transport_error(err) from err

    def _map_api_exception(self, err: Any) -> StoreError:
        status = int(err.status or 0)
        headers = err.headers or {}
        if status == 0:  # the library's wrapper for TLS errors and unusable requests
            return StoreUnavailable(f"{self._where}: request failed: {err.reason}")
        message = server_message(err.body, keys=("message", "error"))
        if not message:
            message = str(
                headers.get("X-Influxdb-Error")
                or headers.get("X-Platform-Error-Code")
                or err.reason
                or ""
            )
        if status == 404:
            return StoreUnavailable(
                f"{self._where}: {message or 'not found'} "
                f"(org {self.org!r}, bucket {self.bucket!r}; create it or fix the config)"
            )
        return error_for_status(
            status,
            message,
            retry_after=parse_retry_after(headers.get("Retry-After")),
            where=self._where,
        )

    def _map_transport_error(self, err: BaseException) -> StoreUnavailable:
        # NewConnectionError subclasses ConnectTimeoutError in urllib3, but is no timeout
        if isinstance(err, urllib3.exceptions.TimeoutError) and not isinstance(
            err, urllib3.exceptions.NewConnectionError
        ):
            return StoreUnavailable(f"{self._where}: write timed out")
        return StoreUnavailable(f"{self._where}: write failed: {type(err).__name__}: {err}")

    def _probe(self) -> None:
        # without gzip: the library would send an empty body labelled gzip, which is no gzip
        client = self._make_client(gzip=False)
        try:
            client.write_api(write_options=SYNCHRONOUS).write(
                bucket=self.bucket, org=self.org, record=b"", write_precision=WritePrecision.NS
            )
        finally:
            client.close()

    async def check(self) -> str:
        """An empty write proves the server, token, org, bucket and write permission.

        InfluxDB 2 checks org, bucket and permission (401/403/404) before it reads the body and
        then answers an empty body with 400 "writing requires points"; nothing is stored.
        """
        try:
            await asyncio.to_thread(self._probe)
        except ApiException as err:
            if int(err.status or 0) == 400:  # "writing requires points": all checks passed
                return self._ok()
            raise self._map_api_exception(err) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise self._map_transport_error(err) from err
        return self._ok()  # 204: servers that accept an empty write (1.8, 3.x)

    def _ok(self) -> str:
        return f"InfluxDB at {self._shown_url}: bucket {self.bucket!r} of org {self.org!r} writable"

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)
