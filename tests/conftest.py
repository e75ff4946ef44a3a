from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.influxd import Influxd, running_influxd
from tests.needs import tool

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One real influxd for the whole session; each test takes its own database."""
    with running_influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.fixture
def influx_db(influxd: Influxd) -> str:
    name = f"t{next(_db_counter)}"
    influxd.create_db(name)
    return name


def shared_or_skip(path: Path, environ: Mapping[str, str]) -> Path:
    """``path`` when it is there; else a visible skip, CI included: the recorded captures
    are other projects' test data beside this project, not part of its own checkout, so a
    clean clone may lack them (``environ`` is kept for callers; it changes nothing)."""
    if not path.is_dir():
        pytest.skip(f"conformance data not available: {path} is absent")
    return path


@pytest.fixture
def shared_dir() -> Path:
    return shared_or_skip(SHARED, os.environ)


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certificate, key): self-signed for 127.0.0.1, made with the openssl command."""
    openssl = tool("openssl", "apt-get install openssl; `make openssl` does")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "influx.pem", d / "influx.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=influx", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
