"""HTTP transport of the FRITZ!Box clients (AHA and TR-064): certificate checks, the
client, and one request with a capped body and typed errors. No session handling here.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from collector.config import FritzboxConfig
from collector.errors import ConfigError, ParseError, TransientError

#: Larger answers are refused: a device list of a full box is well below 1 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024



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
