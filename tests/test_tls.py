"""Certificate checks of the HTTP clients: one CA bundle load for every client that verifies
against the default trust store, none for clients that only speak plain HTTP."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from collector.config import FritzboxConfig, OverkizConfig, ThinknxConfig
from collector.errors import ConfigError
from collector.sources.fritzbox.transport import build_http_client as fritzbox_client
from collector.sources.overkiz.source import OverkizSource
from collector.sources.thinknx.client import build_http_client as thinknx_client
from collector.stores.influx_v1 import InfluxV1Store
from collector.tls import default_trust, no_tls, verify_for


def _context(client: httpx.AsyncClient) -> ssl.SSLContext:
    """The SSL context a client's connection pool hands to every TLS connection. httpx has
    no public accessor; this reads its transport's pool."""
    context = client._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert isinstance(context, ssl.SSLContext)
    return context


def test_the_default_trust_store_is_loaded_once_and_verifies() -> None:
    trust = verify_for("x", ("https://a.test",), verify_tls=True, ca_file=None)
    assert trust is default_trust()
    assert isinstance(trust, ssl.SSLContext)
    assert trust.verify_mode == ssl.CERT_REQUIRED and trust.check_hostname
    assert trust.cert_store_stats()["x509_ca"] > 0
    assert verify_for("y", ("https://b.test", None), verify_tls=True, ca_file=None) is trust


@pytest.mark.parametrize("urls", [("http://a.test",), ("HTTP://a.test:8080/x", None),
                                  ("http://a.test", "http://a.test:49000")])
def test_plain_http_only_loads_no_bundle_and_trusts_nobody(urls: tuple[str | None, ...]) -> None:
    context = verify_for("x", urls, verify_tls=True, ca_file=None)
    assert context is no_tls()
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("urls", [("http://a.test", "https://a.test:49443"), (None,), ()])
def test_any_https_or_no_url_at_all_verifies_against_the_trust_store(
        urls: tuple[str | None, ...]) -> None:
    assert verify_for("x", urls, verify_tls=True, ca_file=None) is default_trust()


def test_verify_tls_false_turns_the_check_off_for_https() -> None:
    assert verify_for("x", ("https://a.test",), verify_tls=False, ca_file=None) is False


def test_a_ca_file_is_loaded_once_and_a_missing_one_is_a_config_error(tmp_path: Path) -> None:
    ca = Path(ssl.get_default_verify_paths().openssl_cafile)
    if not ca.is_file():
        pytest.skip(f"no CA file at {ca} on this machine")
    own = verify_for("x", ("https://a.test",), verify_tls=True, ca_file=ca)
    assert isinstance(own, ssl.SSLContext) and own is not default_trust()
    assert own.cert_store_stats()["x509_ca"] > 0
    assert verify_for("y", ("http://b.test",), verify_tls=False, ca_file=str(ca)) is own
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=r"^thinknx villa: cannot load ca_file .*missing\.pem"):
        verify_for("thinknx villa", ("https://a.test",), verify_tls=True, ca_file=missing)


def test_every_source_and_store_over_https_shares_one_trust_store(tmp_path: Path) -> None:
    asyncio.run(_every_source_and_store_over_https(tmp_path))


async def _every_source_and_store_over_https(tmp_path: Path) -> None:
    box = FritzboxConfig(name="home", url="https://fritz.test", username="u", password="p")
    cloud = ThinknxConfig(name="villa", cloud_key="k" * 32)
    somfy = OverkizConfig(name="tahoma", server="somfy_europe", username="u", password="p")
    clients = [fritzbox_client(box), thinknx_client(cloud)]
    overkiz = OverkizSource(somfy, state_dir=tmp_path)
    influx = InfluxV1Store("https://influx.test:8086", "home")
    try:
        contexts = [_context(c) for c in clients]
        contexts.append(_context(overkiz._http))
        contexts.append(_context(influx._http))
        assert all(c is default_trust() for c in contexts)
    finally:
        for c in clients:
            await c.aclose()
        await overkiz.aclose()
        await influx.aclose()


def test_clients_on_plain_http_load_no_bundle(tmp_path: Path) -> None:
    asyncio.run(_clients_on_plain_http(tmp_path))


async def _clients_on_plain_http(tmp_path: Path) -> None:
    box = FritzboxConfig(name="home", url="http://192.168.178.1", username="u", password="p")
    knx = ThinknxConfig(name="villa", url="http://192.168.1.5:5051", username="u",
                        password="p")
    gateway = OverkizConfig(name="tahoma", url="http://127.0.0.1:8080", username="u",
                            password="p")
    clients = [fritzbox_client(box), thinknx_client(knx)]
    overkiz = OverkizSource(gateway, state_dir=tmp_path)
    try:
        contexts = [_context(c) for c in clients] + [_context(overkiz._http)]
        assert all(c is no_tls() for c in contexts)
        assert no_tls().cert_store_stats()["x509_ca"] == 0
    finally:
        for c in clients:
            await c.aclose()
        await overkiz.aclose()
