"""HTTP transport of the FRITZ!Box clients (AHA and TR-064): certificate checks, the
client, and one request with a capped body and typed errors. No session handling here.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from collector.config import FritzboxConfig
from collector.errors import ParseError, TransientError
from collector.tls import verify_for

#: Larger answers are refused: a device list of a full box is well below 1 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024



@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes
    content_type: str


def tls_verify(config: FritzboxConfig) -> ssl.SSLContext | bool:
    """How the box's certificate is checked: against ``ca_file``, not at all (an explicit
    ``verify_tls = false``), or against the default trust store all clients share. A box
    reached over plain HTTP only gets a context that loads no CA bundle and trusts nobody
    (collector/tls.py). The default TR-064 URL has the scheme of ``url``."""
    return verify_for(f"fritzbox {config.name}", (config.url, config.tr064_url),
                      verify_tls=config.verify_tls, ca_file=config.ca_file)


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
