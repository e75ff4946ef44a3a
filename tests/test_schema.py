"""The one schema table: docs/schema.md matches it, and every point the sources write
follows it (known measurement, allowed tags and tag values, known state codes/labels)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.config import FritzboxConfig
from collector.errors import PartialFailure
from collector.model import Reading
from collector.schema import (
    BASE_TAGS,
    BY_NAME,
    OPTIONAL_TAGS,
    SOURCES,
    STATE_BY_NAME,
    render_markdown,
)
from collector.simulators.fritzbox import FritzboxSimulator
from collector.sources.fritzbox.source import FritzboxSource

ROOT = Path(__file__).resolve().parents[1]


def test_docs_schema_is_generated_from_the_table() -> None:
    assert (ROOT / "docs" / "schema.md").read_text(encoding="utf-8") == render_markdown(), (
        "docs/schema.md is stale: run `make schema`"
    )


def check_follows_schema(readings: Sequence[Reading]) -> set[str]:
    seen: set[str] = set()
    for r in readings:
        assert r.measurement in BY_NAME, r
        assert r.source in SOURCES
        assert r.site and r.device_id and r.device, r
        assert isinstance(r.value, float)
        m = BY_NAME[r.measurement]
        allowed = dict(m.tags)
        for key, value in r.tags:
            assert key not in BASE_TAGS, r
            assert key in OPTIONAL_TAGS or key in allowed, (key, r)
            if allowed.get(key):
                assert value in allowed[key], (key, value, r)
        if r.measurement == "state":
            name = r.tag("name")
            assert name in STATE_BY_NAME, r
            assert (int(r.value), r.label) in STATE_BY_NAME[name].codes, r
        else:
            assert r.label is None
        for key, values in m.tags:
            if key in ("period", "name", "metric") or values:  # tags that split the series
                assert r.tag(key) is not None, (key, r)
        seen.add(r.measurement if r.measurement != "state" else f"state:{r.tag('name')}")
    return seen


@pytest.mark.parametrize("old_firmware", [False, True])
def test_fritzbox_points_follow_the_schema(old_firmware: bool) -> None:
    with FritzboxSimulator(old_firmware=old_firmware) as sim:
        config = FritzboxConfig(name="home", url=sim.url, tr064_url=sim.tr064_url,
                                username=sim.username, password=SecretStr(sim.password),
                                timezone="Europe/Berlin")

        async def collect() -> list[Reading]:
            out: list[Reading] = []
            async with FritzboxSource(config) as source:
                for job in source.jobs():
                    try:
                        out += await job.run()
                    except PartialFailure as err:
                        out += err.readings  # type: ignore[arg-type]
            return out

        readings = asyncio.run(collect())
    seen = check_follows_schema(readings)
    assert {"power_w", "energy_wh", "voltage_v", "temperature_c", "humidity_pct",
            "setpoint_c", "battery_pct", "energy_period_wh", "voip_clients",
            "state:present", "state:switch", "state:thermostat_mode", "state:window_open",
            "state:alert"} <= seen
    if not old_firmware:
        assert "state:voip_status" in seen
