"""The throwaway influxd for tests, skipping (or failing in CI) when it is missing.

``COLLECTOR_REQUIRE_INTEGRATION=1`` (set by .ci/run) turns a missing ``influxd`` into a
failure instead of a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collector.influxd import Influxd, free_port
from collector.influxd import influxd_binary as _binary
from collector.influxd import running_influxd as _running

__all__ = ["Influxd", "free_port", "influxd_binary", "running_influxd"]


def influxd_binary() -> str | None:
    found = _binary()
    if found is None and os.environ.get("COLLECTOR_REQUIRE_INTEGRATION") == "1":
        pytest.fail("influxd is not installed but COLLECTOR_REQUIRE_INTEGRATION=1")
    return found


@contextmanager
def running_influxd(workdir: Path) -> Iterator[Influxd]:
    binary = influxd_binary()
    if binary is None:
        pytest.skip("influxd not installed (apt-get install influxdb); integration test skipped")
    with _running(workdir, binary) as server:
        yield server
