"""HTTPS to the box: verification on by default, a self-signed box needs ca_file or an
explicit verify_tls = false."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.config import FritzboxConfig
from collector.errors import CollectorError, TransientError
from collector.simulators.fritzbox import FritzboxSimulator
from collector.sources.fritzbox.source import FritzboxSource
from tests.needs import tool


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = tool("openssl", "apt-get install openssl; `make openssl` does")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "box.pem", d / "box.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=fritz.box", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_box(self_signed: tuple[Path, Path]) -> Iterator[FritzboxSimulator]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*self_signed)
    with FritzboxSimulator(tls=ctx) as sim:
        assert sim.url.startswith("https://")
        yield sim


def _poll(sim: FritzboxSimulator, **tls: object) -> int:
    config = FritzboxConfig(name="home", url=sim.url, username=sim.username,
                            password=SecretStr(sim.password), voip=False, **tls)  # type: ignore[arg-type]

    async def go() -> int:
        async with FritzboxSource(config) as source:
            return len(await source.poll())

    return asyncio.run(go())


def test_self_signed_box_is_refused_by_default(https_box: FritzboxSimulator) -> None:
    with pytest.raises(CollectorError) as info:
        _poll(https_box)
    assert isinstance(info.value, TransientError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert "needs ca_file" in str(info.value)
    assert https_box.login_count == 0


def test_ca_file_makes_the_box_trusted(https_box: FritzboxSimulator,
                                       self_signed: tuple[Path, Path]) -> None:
    assert _poll(https_box, ca_file=self_signed[0]) > 50
    assert https_box.login_count == 1


def test_verification_can_be_switched_off_explicitly(https_box: FritzboxSimulator) -> None:
    assert _poll(https_box, verify_tls=False) > 50
