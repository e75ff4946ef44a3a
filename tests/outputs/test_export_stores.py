"""The same points exported from a real InfluxDB 1.x and from the embedded store give the same
rows (values, tags, timestamps), in every shape the export offers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from collector.config import Config, InfluxConfig, StoreConfig
from collector.lineprotocol import encode_many
from collector.model import Reading, make_tags
from collector.outputs import analysis
from collector.outputs.export import ExportRequest, Selection, export
from collector.stores.read import read
from collector.stores.sqlite import SqliteStore
from tests.influxd import Influxd

T0 = datetime(2024, 10, 26, 22, 0, tzinfo=UTC)  # the night of a 25-hour day in Berlin


def readings() -> list[Reading]:
    """Three devices of two sites, several at the same instant, names needing escapes, a
    state with labels, a setpoint with its kind, a group, a tariff index."""
    out: list[Reading] = []
    devices = [("home", "ain1", "Plug, kitchen", "Kitchen"), ("home", "ain2", "Plug=2", None),
               ("villa", "guid-3", "Meter 3", "Living room")]
    for i in range(40):
        when = T0 + timedelta(minutes=15 * i)
        for n, (site, dev_id, name, room) in enumerate(devices):
            tags = make_tags(room=room)
            out.append(Reading("power_w", 10.0 * n + i / 4, when, "fritzbox", site, dev_id,
                               name, tags))
            out.append(Reading("energy_wh", 1000.0 * n + 25.0 * i, when, "fritzbox", site,
                               dev_id, name, tags))
        out.append(Reading("state", float(i % 2), when + timedelta(seconds=7), "overkiz",
                           "villa", "io://1/2", "Door", make_tags(name="open_closed",
                                                                   room="Hall"),
                           label=("closed", "open")[i % 2]))
        out.append(Reading("setpoint_c", 20.0 + (i % 3) / 2, when, "thinknx", "villa", "t1",
                           "Thermostat", make_tags(kind="target", room="Living room")))
    out.append(Reading("energy_wh", 77.0, T0, "fritzbox", "home", "grp", "All plugs",
                       make_tags(scope="group")))
    out.append(Reading("energy_wh", 5.0, T0, "overkiz", "villa", "io://m", "Meter",
                       make_tags(tariff="1")))
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> tuple[Config, Config]:
    lines = encode_many(readings())
    db = "export_same"
    influxd.create_db(db)
    assert influxd.write(db, "\n".join(lines)).status_code == 204
    path = tmp_path_factory.mktemp("sqlite") / "collector.sqlite3"
    store = SqliteStore(path)
    store.write_sync(lines)
    store.close()
    return (Config(store=StoreConfig(kind="sqlite", path=path)),
            Config(store=StoreConfig(kind="influxdb"),
                   influxdb=InfluxConfig(url=influxd.url, api="v1", database=db)))


def _csv(config: Config, req: ExportRequest) -> str:
    out = io.StringIO()
    export(config, req, stdout=out)
    return out.getvalue()


ALL = ("power_w", "energy_wh", "state", "setpoint_c")
BERLIN = ZoneInfo("Europe/Berlin")


# Lines (with the header) each export has, counted by hand from readings(): 40 instants of
# 15 minutes from T0 (ten hours, all in Berlin's 2024-10-27); power and energy of 3 devices
# at each, a state 7 s later, a setpoint; one group reading and one tariff index at T0.
@pytest.mark.parametrize(("req", "lines"), [
    (ExportRequest(ALL), 1 + 120 + 122 + 40 + 40),
    (ExportRequest(ALL, tz=BERLIN), 1 + 322),
    (ExportRequest(("power_w",), Selection(device="Plug, kitchen")), 1 + 40),
    (ExportRequest(("power_w", "energy_wh"), Selection(site="villa")), 1 + 40 + 40 + 1),
    (ExportRequest(ALL, Selection(room="Living room")), 1 + 40 + 40 + 40),
    # [T0 + 1 h, T0 + 2 h): 4 instants of 3 devices
    (ExportRequest(("power_w",), Selection(start=int((T0 + timedelta(hours=1)).timestamp() * 1e9),
                                           end=int((T0 + timedelta(hours=2)).timestamp() * 1e9))),
     1 + 12),
    # one row per instant: 40 of the readings, 40 of the state
    (ExportRequest(ALL, wide=True), 1 + 80),
    # ten hours of 3 power, 3 energy, 1 state and 1 setpoint series; the group and the
    # tariff index in the first hour only
    (ExportRequest(ALL, resample="1h", tz=BERLIN), 1 + 10 * 8 + 2),
    # one Berlin day
    (ExportRequest(("energy_wh", "state"), resample="1d", tz=BERLIN, wide=True), 1 + 1),
], ids=["all", "berlin", "device", "site", "room", "range", "wide", "1h", "1d-wide"])
def test_both_stores_export_the_same_rows(stores: tuple[Config, Config],
                                          req: ExportRequest, lines: int) -> None:
    """Both stores give the same CSV, of the length counted by hand (the values of each
    shape are pinned in tests/test_export_literal.py)."""
    sqlite, influx = stores
    from_sqlite = _csv(sqlite, req)
    assert from_sqlite.count("\n") == lines
    assert _csv(influx, req) == from_sqlite


def test_small_windows_never_split_an_instant(stores: tuple[Config, Config]) -> None:
    """Windows of 2 points over instants of 3 series (the window grows for one instant)."""
    sqlite, influx = stores
    want = list(read(sqlite, "power_w", Selection()))
    assert len(want) == 120
    for chunk in (1, 2, 4, 7):
        assert list(read(influx, "power_w", Selection(), chunk=chunk)) == want


def test_further_tag_filters_select_the_same_rows_in_both_stores(
        stores: tuple[Config, Config]) -> None:  # fmt: skip
    sqlite, influx = stores
    sel = Selection(tags=(("kind", "target"),), room="Living room")
    want = list(read(sqlite, "setpoint_c", sel))
    assert [(tags["device_id"], value) for _, tags, value, _ in want][:3] == [
        ("t1", 20.0), ("t1", 20.5), ("t1", 21.0)]
    assert len(want) == 40
    assert list(read(influx, "setpoint_c", sel)) == want
    none = Selection(tags=(("kind", "eco"),))
    assert list(read(sqlite, "setpoint_c", none)) == list(read(influx, "setpoint_c", none)) == []


def test_the_rows_are_the_points_written(stores: tuple[Config, Config]) -> None:
    sqlite, _ = stores
    text = _csv(sqlite, ExportRequest(("state",), Selection(end=int(
        (T0 + timedelta(minutes=20)).timestamp() * 1e9)), tz=BERLIN))
    assert text.splitlines() == [
        "time,measurement,source,site,device_id,device,room,model,scope,name,other_tags,"
        "value,unit,label",
        "2024-10-27T00:00:07+02:00,state,overkiz,villa,io://1/2,Door,Hall,,,open_closed,,0.0,"
        "code,closed",
        "2024-10-27T00:15:07+02:00,state,overkiz,villa,io://1/2,Door,Hall,,,open_closed,,1.0,"
        "code,open",
    ]


def test_an_unreachable_influxdb_is_a_store_error(tmp_path: Path) -> None:
    from collector.errors import StoreUnavailable
    from tests.influxd import free_port

    config = Config(store=StoreConfig(kind="influxdb"), influxdb=InfluxConfig(
        url=f"http://127.0.0.1:{free_port()}", api="v1", database="x", timeout=2.0))
    out = tmp_path / "power.csv"
    with pytest.raises(StoreUnavailable, match=r"InfluxDB at http://127\.0\.0\.1:\d+: Connect"):
        export(config, ExportRequest(("power_w",)), out)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("measurement", ["state", "power_w", "setpoint_c"])
def test_analysis_load_gives_the_same_frame_from_both_stores(
        stores: tuple[Config, Config], measurement: str) -> None:
    sqlite, influx = stores
    a = analysis.load(measurement, T0 + timedelta(hours=1), None, config=sqlite)
    b = analysis.load(measurement, T0 + timedelta(hours=1), None, config=influx)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == {"state": 36, "power_w": 108, "setpoint_c": 36}[measurement]
    if measurement == "state":
        assert a["label"].tolist()[:2] == ["closed", "open"]
        assert a["value"].tolist()[:2] == [0.0, 1.0]
