from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.influxd import Influxd, running_influxd

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


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"conformance data not available: {SHARED} is absent")
    return SHARED
