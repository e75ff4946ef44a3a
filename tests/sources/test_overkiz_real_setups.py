"""Every real ``/setup`` in ../shared/fixtures/overkiz/setup, served by the simulator as
recorded, through ``collector once`` (a separate process) into the embedded store: each device
with a numeric temperature state gives a ``temperature_c`` point, each meter an ``energy_wh`` in
Wh. The expected values are read off the recorded files by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.simulators.overkiz import OverkizSimulator, config_snippet
from collector.stores.sqlite import SqliteStore

#: file -> {(measurement, device_id): value}, as each file records it (a few devices each).
EXPECTED: dict[str, dict[tuple[str, str], float]] = {
    "setup_cozytouch_4.json": {
        ("temperature_c", "io://****-****-6923/11301395#2"): 14.0,
        ("temperature_c", "io://****-****-6923/15021786#4"): 21.4,
        # the hot-water tank: an integer temperature without a unit attribute
        ("temperature_c", "io://****-****-6923/4683855#1"): 49.0,
        ("energy_wh", "io://****-****-6923/11301395#5"): 728_000.0,
        ("energy_wh", "io://****-****-6923/4683855#2"): 5_882_466.0,
        ("co2_ppm", "io://****-****-6923/15021786#2"): 432.0,
    },
    "setup_local_with_climate.json": {  # the local API: no unit attribute at all
        ("temperature_c", "io://****-****-9373/1292684#2"): 24.1,
        ("temperature_c", "io://****-****-9373/10832611#2"): 24.2,
        ("temperature_c", "io://****-****-9373/10074960#2"): 24.0,
        ("battery_pct", "io://****-****-9373/3000744#1"): 62.0,
    },
    "setup_tahoma_be.json": {  # with two states of data type 5 (date)
        ("temperature_c", "io://1234-1234-4892/6699846#2"): 19.4,
        ("battery_pct", "io://1234-1234-4892/6699846#1"): 70.0,
    },
    "setup_tahoma_climate.json": {
        ("temperature_c", "io://1234-1234-5614/11530893#11"): 22.7,
        ("temperature_c", "io://1234-1234-5614/11530893#7"): 18.8,
    },
}
#: Devices with a numeric core:TemperatureState and meters, per file (counted by hand).
THERMOMETERS = {"setup_cozytouch_4.json": 10, "setup_local_with_climate.json": 8,
                "setup_tahoma_be.json": 1, "setup_tahoma_climate.json": 5}
METERS = {"setup_cozytouch_4.json": 5, "setup_local_with_climate.json": 0,
          "setup_tahoma_be.json": 0, "setup_tahoma_climate.json": 0}


def test_every_recorded_setup_is_listed(shared_dir: Path) -> None:
    found = {p.name for p in (shared_dir / "fixtures/overkiz/setup").glob("*.json")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_collector_once_collects_every_real_setup(
    shared_dir: Path, tmp_path: Path, name: str
) -> None:
    setup = shared_dir / "fixtures/overkiz/setup" / name
    with OverkizSimulator(setup_file=setup) as sim:
        cfg = tmp_path / "collector.toml"
        cfg.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path / "store.sqlite3"}"\n'
                       f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n'
                       + config_snippet(sim))
        env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
        result = subprocess.run([sys.executable, "-m", "collector", "once", "--config",
                                 str(cfg)], cwd=tmp_path, env=env | {"COLUMNS": "200"},
                                capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ParseError" not in result.stdout + result.stderr
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        got: dict[tuple[str, str], list[float]] = {}
        for measurement in ("temperature_c", "energy_wh", "co2_ppm", "battery_pct"):
            for _, tags, value, _ in store.query(measurement, None, None, None):
                if tags.get("tariff") is None:
                    got.setdefault((measurement, tags["device_id"]), []).append(value)
    finally:
        store.close()
    for key, value in EXPECTED[name].items():
        assert got.get(key) == [value], key
    assert sum(1 for m, _ in got if m == "temperature_c") == THERMOMETERS[name]
    assert sum(1 for m, _ in got if m == "energy_wh") == METERS[name]
