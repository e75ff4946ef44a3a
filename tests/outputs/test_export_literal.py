"""``collector export`` in every shape, from hand-written points, against CSV written out by
hand: from the embedded store and from a real InfluxDB alike.

The points lie around the 25-hour day of Europe/Berlin (2024-10-27: CEST until 01:00 UTC,
then CET): a plug's power (a gauge: resampled by the mean), its meter (a counter: the last
reading), a tariff index of another meter, a door contact (a state: the last code and label)
and a thermostat's target setpoint.
"""

from __future__ import annotations

import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.config import Config, InfluxConfig, StoreConfig
from collector.outputs.export import ExportRequest, export
from collector.stores.sqlite import SqliteStore
from tests.influxd import Influxd

PLUG = "source=fritzbox,site=home,device_id=ain1,device=Plug\\,\\ kitchen,room=Kitchen"
PLUG2 = "source=fritzbox,site=home,device_id=ain2,device=Plug\\=2"
LINES = (
    f"power_w,{PLUG} value=100 1729980600000000000",  # 2024-10-26T22:10:00Z
    f"power_w,{PLUG2} value=10 1729980600000000000",  # 2024-10-26T22:10:00Z
    f"power_w,{PLUG} value=200 1729982400000000000",  # 2024-10-26T22:40:00Z
    f"power_w,{PLUG} value=60 1729984800000000000",  # 2024-10-26T23:20:00Z
    f"energy_wh,{PLUG} value=1000 1729980600000000000",  # 2024-10-26T22:10:00Z
    f"energy_wh,{PLUG} value=1100 1729982400000000000",  # 2024-10-26T22:40:00Z
    f"energy_wh,{PLUG} value=1400 1730068200000000000",  # 2024-10-27T22:30:00Z
    f"energy_wh,{PLUG} value=1500 1730071800000000000",  # 2024-10-27T23:30:00Z
    "energy_wh,source=overkiz,site=villa,device_id=io://m,device=Meter,tariff=1 "
    "value=5 1729980600000000000",  # 2024-10-26T22:10:00Z
    "state,source=overkiz,site=villa,device_id=io://1/2,device=Door,room=Hall,"
    'name=open_closed value=0,label="closed" 1729980607000000000',  # 2024-10-26T22:10:07Z
    "state,source=overkiz,site=villa,device_id=io://1/2,device=Door,room=Hall,"
    'name=open_closed value=1,label="open" 1729983007000000000',  # 2024-10-26T22:50:07Z
    "setpoint_c,source=thinknx,site=villa,device_id=t1,device=Thermostat,room=Living\\ room,"
    "kind=target value=20.5 1729980600000000000",  # 2024-10-26T22:10:00Z
)
ALL = ("power_w", "energy_wh", "state", "setpoint_c")
BERLIN = ZoneInfo("Europe/Berlin")
LONG_HEADER = ("time,measurement,source,site,device_id,device,room,model,scope,kind,name,"
               "tariff,other_tags,value,unit,label")
WIDE_HEADER = ('time,Door (Hall) state[name=open_closed],Meter energy_wh[tariff=1],'
               '"Plug, kitchen (Kitchen) energy_wh","Plug, kitchen (Kitchen) power_w",'
               "Plug=2 power_w,Thermostat (Living room) setpoint_c[kind=target]")

EXPECTED: dict[str, tuple[ExportRequest, str]] = {
    "long": (ExportRequest(ALL), f"""\
{LONG_HEADER}
2024-10-26T22:10:00Z,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,100.0,W,
2024-10-26T22:10:00Z,power_w,fritzbox,home,ain2,Plug=2,,,,,,,,10.0,W,
2024-10-26T22:40:00Z,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,200.0,W,
2024-10-26T23:20:00Z,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,60.0,W,
2024-10-26T22:10:00Z,energy_wh,overkiz,villa,io://m,Meter,,,,,,1,,5.0,Wh,
2024-10-26T22:10:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1000.0,Wh,
2024-10-26T22:40:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1100.0,Wh,
2024-10-27T22:30:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1400.0,Wh,
2024-10-27T23:30:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1500.0,Wh,
2024-10-26T22:10:07Z,state,overkiz,villa,io://1/2,Door,Hall,,,,open_closed,,,0.0,code,closed
2024-10-26T22:50:07Z,state,overkiz,villa,io://1/2,Door,Hall,,,,open_closed,,,1.0,code,open
2024-10-26T22:10:00Z,setpoint_c,thinknx,villa,t1,Thermostat,Living room,,,target,,,,20.5,°C,
"""),
    "wide": (ExportRequest(ALL, wide=True), f"""\
{WIDE_HEADER}
2024-10-26T22:10:00Z,,5.0,1000.0,100.0,10.0,20.5
2024-10-26T22:10:07Z,0.0,,,,,
2024-10-26T22:40:00Z,,,1100.0,200.0,,
2024-10-26T22:50:07Z,1.0,,,,,
2024-10-26T23:20:00Z,,,,60.0,,
2024-10-27T22:30:00Z,,,1400.0,,,
2024-10-27T23:30:00Z,,,1500.0,,,
"""),
    # UTC hours: the mean of the power, the last meter reading, the last state and its label
    "resample-1h": (ExportRequest(ALL, resample="1h"), f"""\
{LONG_HEADER}
2024-10-26T22:00:00Z,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,150.0,W,
2024-10-26T22:00:00Z,power_w,fritzbox,home,ain2,Plug=2,,,,,,,,10.0,W,
2024-10-26T23:00:00Z,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,60.0,W,
2024-10-26T22:00:00Z,energy_wh,overkiz,villa,io://m,Meter,,,,,,1,,5.0,Wh,
2024-10-26T22:00:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1100.0,Wh,
2024-10-27T22:00:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1400.0,Wh,
2024-10-27T23:00:00Z,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1500.0,Wh,
2024-10-26T22:00:00Z,state,overkiz,villa,io://1/2,Door,Hall,,,,open_closed,,,1.0,code,open
2024-10-26T22:00:00Z,setpoint_c,thinknx,villa,t1,Thermostat,Living room,,,target,,,,20.5,°C,
"""),
    # Berlin days: 2024-10-27 lasts 25 hours, until 23:00 UTC; 22:30 UTC is still in it
    "resample-1d-wide": (ExportRequest(ALL, resample="1d", wide=True, tz=BERLIN), f"""\
{WIDE_HEADER}
2024-10-27T00:00:00+02:00,1.0,5.0,1400.0,120.0,10.0,20.5
2024-10-28T00:00:00+01:00,,,1500.0,,,
"""),
    "tz": (ExportRequest(ALL, tz=BERLIN), f"""\
{LONG_HEADER}
2024-10-27T00:10:00+02:00,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,100.0,W,
2024-10-27T00:10:00+02:00,power_w,fritzbox,home,ain2,Plug=2,,,,,,,,10.0,W,
2024-10-27T00:40:00+02:00,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,200.0,W,
2024-10-27T01:20:00+02:00,power_w,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,60.0,W,
2024-10-27T00:10:00+02:00,energy_wh,overkiz,villa,io://m,Meter,,,,,,1,,5.0,Wh,
2024-10-27T00:10:00+02:00,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1000.0,Wh,
2024-10-27T00:40:00+02:00,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1100.0,Wh,
2024-10-27T23:30:00+01:00,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1400.0,Wh,
2024-10-28T00:30:00+01:00,energy_wh,fritzbox,home,ain1,"Plug, kitchen",Kitchen,,,,,,,1500.0,Wh,
2024-10-27T00:10:07+02:00,state,overkiz,villa,io://1/2,Door,Hall,,,,open_closed,,,0.0,code,closed
2024-10-27T00:50:07+02:00,state,overkiz,villa,io://1/2,Door,Hall,,,,open_closed,,,1.0,code,open
2024-10-27T00:10:00+02:00,setpoint_c,thinknx,villa,t1,Thermostat,Living room,,,target,,,,20.5,°C,
"""),
}


@pytest.fixture(scope="module")
def literal_stores(tmp_path_factory: pytest.TempPathFactory,
                   influxd: Influxd) -> dict[str, Config]:
    db = "export_literal"
    influxd.create_db(db)
    assert influxd.write(db, "\n".join(LINES)).status_code == 204
    path = tmp_path_factory.mktemp("literal") / "collector.sqlite3"
    store = SqliteStore(path)
    store.write_sync(list(LINES))
    store.close()
    return {"sqlite": Config(store=StoreConfig(kind="sqlite", path=path)),
            "influxdb": Config(store=StoreConfig(kind="influxdb"),
                               influxdb=InfluxConfig(url=influxd.url, api="v1", database=db))}


@pytest.mark.parametrize("store", ["sqlite", "influxdb"])
@pytest.mark.parametrize("shape", list(EXPECTED))
def test_the_export_is_the_csv_written_by_hand(literal_stores: dict[str, Config], store: str,
                                               shape: str) -> None:
    req, want = EXPECTED[shape]
    out = io.StringIO()
    export(literal_stores[store], req, stdout=out)
    assert out.getvalue() == want


def test_the_file_written_with_out_is_the_same_csv(literal_stores: dict[str, Config],
                                                   tmp_path: Path) -> None:
    req, want = EXPECTED["resample-1d-wide"]
    target = tmp_path / "energy.csv"
    export(literal_stores["sqlite"], req, target)
    assert target.read_text(encoding="utf-8") == want
