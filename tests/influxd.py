"""The throwaway influxd for tests, skipping (or failing in CI) when it is missing.

In CI (``CI=true`` or ``COLLECTOR_REQUIRE_INTEGRATION=1``, both set by .ci/run) a missing
``influxd`` is a failure instead of a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collector.bench.influxd import Influxd, free_port
from collector.bench.influxd import influxd_binary as _binary
from collector.bench.influxd import running_influxd as _running
from tests.needs import in_ci

__all__ = ["Influxd", "free_port", "influxd_binary", "running_influxd"]


def influxd_binary() -> str | None:
    found = _binary()
    if found is None and in_ci():
        pytest.fail("influxd missing in CI: `make influxdb` installs Debian's influxdb")
    return found


@contextmanager
def running_influxd(workdir: Path) -> Iterator[Influxd]:
    binary = influxd_binary()
    if binary is None:
        pytest.skip("influxd not installed (apt-get install influxdb); integration test skipped")
    with _running(workdir, binary) as server:
        yield server
