"""How the HTTP clients check certificates: one trust store for all, none for plain HTTP.

Given ``verify=True``, httpx builds a new SSL context for every client and loads the CA
bundle into each (about 1 MB of resident memory and some 30 ms a load). The clients are
given contexts instead: every client that checks against the default trust store shares one
load, every ``ca_file`` is loaded once, and a client that only ever speaks plain HTTP (none
follows redirects) loads no bundle at all.

A shared context is safe: the clients only read it, except that httpcore sets the ALPN
protocols on it before each TLS handshake, the same ``http/1.1`` for every client here.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from os import PathLike
from urllib.parse import urlsplit

from collector.errors import ConfigError


@functools.cache
def default_trust() -> ssl.SSLContext:
    """httpx's own verifying context (certifi's CA bundle, or ``$SSL_CERT_FILE`` /
    ``$SSL_CERT_DIR``), built on first use and then shared."""
    import httpx

    return httpx.create_ssl_context()


@functools.cache
def no_tls() -> ssl.SSLContext:
    """For a client that speaks plain HTTP only: it loads no CA bundle and still requires a
    verified certificate and host name, so a TLS connection would fail, never trust anyone."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def _ca_file_trust(path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=path)


def verify_for(
    what: str,
    urls: Iterable[str | None],
    *,
    verify_tls: bool,
    ca_file: str | PathLike[str] | None,
) -> ssl.SSLContext | bool:
    """The ``verify`` of a client for ``urls`` (None entries are ignored): ``ca_file``'s
    trust, no check at all (``verify_tls = false``), no TLS (plain ``http://`` only) or the
    shared default trust store. ``what`` names the config section in a ``ConfigError``."""
    if ca_file is not None:
        try:
            return _ca_file_trust(str(ca_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"{what}: cannot load ca_file {ca_file}: {err}") from err
    if not verify_tls:
        return False
    schemes = {urlsplit(url).scheme.lower() for url in urls if url}
    if schemes == {"http"}:
        return no_tls()
    return default_trust()
