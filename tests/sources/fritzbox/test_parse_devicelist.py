from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings

from collector.errors import ParseError
from collector.model import Reading
from collector.sources.fritzbox.normalise import HanFunUnitType
from collector.sources.fritzbox.parse import DeviceInfo, DeviceList, Stats, parse_devicelist
from tests.sources.fritzbox import FIXTURES, fixture, rows
from tests.sources.fritzbox.test_fuzz import generated_devicelist

T = datetime(2024, 1, 7, 12, 0, tzinfo=UTC)


def parse(case: str) -> DeviceList:
    return parse_devicelist(fixture("devicelist", case), site="home", time=T)


DECT200 = {"model": "FRITZ!DECT 200"}
REP100 = {"model": "FRITZ!DECT Repeater 100"}
GROUP = {"scope": "group"}


def test_spec_example() -> None:
    dl = parse("spec_example")
    assert dl.problems == ()
    assert rows(dl.readings) == [
        ("087610000434", "Steckdose", "state", 1.0, "present", DECT200 | {"name": "present"}),
        ("087610000434", "Steckdose", "state", 1.0, "on", DECT200 | {"name": "switch"}),
        ("087610000434", "Steckdose", "state", 0.0, "unlocked", DECT200 | {"name": "lock"}),
        ("087610000434", "Steckdose", "state", 0.0, "unlocked",
         DECT200 | {"name": "device_lock"}),
        ("087610000434", "Steckdose", "state", 1.0, "auto", DECT200 | {"name": "switch_mode"}),
        ("087610000434", "Steckdose", "power_w", 0.0, None, DECT200),  # a zero is a reading
        ("087610000434", "Steckdose", "energy_wh", 707.0, None, DECT200),
        ("087610000434", "Steckdose", "voltage_v", 230.252, None, DECT200),
        ("087610000434", "Steckdose", "temperature_c", 28.5, None, DECT200),
        ("087611048079", "FRITZ!DECT Rep 100 #1", "state", 1.0, "present",
         REP100 | {"name": "present"}),
        ("087611048079", "FRITZ!DECT Rep 100 #1", "temperature_c", 28.8, None, REP100),
        ("65:3A:18-900", "Gruppe", "state", 1.0, "present", GROUP | {"name": "present"}),
        ("65:3A:18-900", "Gruppe", "state", 1.0, "on", GROUP | {"name": "switch"}),
        ("65:3A:18-900", "Gruppe", "state", 1.0, "auto", GROUP | {"name": "switch_mode"}),
    ]  # fmt: skip
    assert {r.time for r in dl.readings} == {T}
    assert {(r.source, r.site) for r in dl.readings} == {("fritzbox", "home")}
    assert dl.devices == (
        DeviceInfo(
            device_id="087610000434", internal_id="17", name="Steckdose",
            product="FRITZ!DECT 200", manufacturer="AVM", fwversion="03.33",
            functionbitmask=896, present=True, is_group=False,
            stats=Stats.TEMPERATURE | Stats.VOLTAGE | Stats.POWER | Stats.ENERGY,
        ),
        DeviceInfo(
            device_id="087611048079", internal_id="16", name="FRITZ!DECT Rep 100 #1",
            product="FRITZ!DECT Repeater 100", manufacturer="AVM", fwversion="03.33",
            functionbitmask=1280, present=True, is_group=False, stats=Stats.TEMPERATURE,
        ),
        DeviceInfo(
            device_id="65:3A:18-900", internal_id="900", name="Gruppe", product="",
            manufacturer="AVM", fwversion="1.0", functionbitmask=512, present=True,
            is_group=True, members=("087610000434",),
        ),
    )  # fmt: skip
    assert dl.device("087610000434") is dl.devices[0]
    assert dl.device("nope") is None
    assert dl.devices[0].tags == (("model", "FRITZ!DECT 200"),)
    assert dl.devices[2].tags == (("scope", "group"),)
    assert [d.wants_stats for d in dl.devices] == [True, True, False]


COMET = {"model": "Comet DECT"}


def test_hkr_off_is_a_state_never_a_temperature() -> None:
    dl = parse("hkr_off")
    assert dl.problems == ()
    assert rows(dl.readings) == [
        ("119590171328", "Bad", "state", 1.0, "present", COMET | {"name": "present"}),
        # <celsius> has the offset applied already: 19.5, not 19.0
        ("119590171328", "Bad", "temperature_c", 19.5, None, COMET),
        ("119590171328", "Bad", "state", 0.0, "closed", COMET | {"name": "window_open"}),
        ("119590171328", "Bad", "state", 0.0, "unlocked", COMET | {"name": "lock"}),
        ("119590171328", "Bad", "state", 1.0, "locked", COMET | {"name": "device_lock"}),
        ("119590171328", "Bad", "state", 0.0, "ok", COMET | {"name": "battery_low"}),
        ("119590171328", "Bad", "battery_pct", 80.0, None, COMET),
        ("119590171328", "Bad", "state", 0.0, "off", COMET | {"name": "thermostat_mode"}),
        ("119590171328", "Bad", "setpoint_c", 21.0, None, COMET | {"kind": "comfort"}),
        ("119590171328", "Bad", "setpoint_c", 17.0, None, COMET | {"kind": "eco"}),
        ("119590171328", "Bad", "state", 0.0, "ok", COMET | {"name": "thermostat_error"}),
    ]


DECT301 = {"model": "FRITZ!DECT 301"}


def test_hkr_on_and_off_in_comfort_eco_next_give_no_setpoint() -> None:
    dl = parse("hkr_on")
    assert dl.problems == ()
    assert rows(dl.readings) == [
        ("099950000645", "Küche", "state", 1.0, "present", DECT301 | {"name": "present"}),
        ("099950000645", "Küche", "temperature_c", 22.4, None, DECT301),
        ("099950000645", "Küche", "state", 1.0, "open", DECT301 | {"name": "window_open"}),
        ("099950000645", "Küche", "state", 1.0, "locked", DECT301 | {"name": "lock"}),
        ("099950000645", "Küche", "state", 0.0, "unlocked", DECT301 | {"name": "device_lock"}),
        ("099950000645", "Küche", "state", 1.0, "low", DECT301 | {"name": "battery_low"}),
        ("099950000645", "Küche", "battery_pct", 10.0, None, DECT301),
        ("099950000645", "Küche", "state", 1.0, "on", DECT301 | {"name": "thermostat_mode"}),
        ("099950000645", "Küche", "state", 0.0, "ok", DECT301 | {"name": "thermostat_error"}),
    ]
    assert not [r for r in dl.readings if r.measurement in ("setpoint_c",)]


DECT300 = {"model": "FRITZ!DECT 300"}


def test_hkr_edge_codes_and_tist_without_temperature_group() -> None:
    dl = parse("hkr_edges")
    assert dl.problems == ()
    assert rows(dl.readings) == [
        ("099950001001", "Keller", "state", 1.0, "present", DECT300 | {"name": "present"}),
        # tist 14 is undocumented: what the device sent (7.0 °C), never clamped to 8.0
        ("099950001001", "Keller", "temperature_c", 7.0, None, DECT300),
        ("099950001001", "Keller", "state", 2.0, "setpoint",
         DECT300 | {"name": "thermostat_mode"}),
        ("099950001001", "Keller", "setpoint_c", 8.0, None, DECT300 | {"kind": "target"}),
        ("099950001001", "Keller", "setpoint_c", 28.0, None, DECT300 | {"kind": "comfort"}),
        # absenk 60 is undocumented: no eco setpoint, never a clamped 28.0
        ("099950001001", "Keller", "setpoint_c", 8.5, None, DECT300 | {"kind": "next"}),
        ("099950001001", "Keller", "state", 6.0, "adapting to the valve stroke",
         DECT300 | {"name": "thermostat_error"}),
        # 255 everywhere: unknown, no point; errorcode 9 is not documented
        ("099950001002", "Dachboden", "state", 1.0, "present", DECT300 | {"name": "present"}),
        ("099950001002", "Dachboden", "state", 9.0, "unknown error",
         DECT300 | {"name": "thermostat_error"}),
    ]  # fmt: skip
    assert all(8.0 <= r.value <= 28.0 for r in dl.readings if r.measurement == "setpoint_c")
    assert [d.stats for d in dl.devices] == [Stats.NONE, Stats.NONE]


COMET = {"model": "Comet DECT"}


def test_tist_stands_in_when_celsius_gives_no_value() -> None:
    """Empty or "inval" <celsius>: the temperature comes from <tist> (0.5 °C steps); a
    valid <celsius> wins and is the only temperature; an implausible tist gives none."""
    dl = parse("hkr_empty_celsius")
    assert dl.problems == ()
    temperatures = [
        (r.device_id, r.value, r.time) for r in dl.readings if r.measurement == "temperature_c"
    ]
    assert temperatures == [
        ("099950002001", 22.0, T),  # tist 44
        ("099950002002", 20.5, T),  # tist 41
        ("099950002003", 21.5, T),  # celsius 215; tist 44 is not a second series
    ]  # the Sauna's tist 100 (50 °C) is not a room temperature: no point
    assert rows(r for r in dl.readings if r.device_id == "099950002001") == [
        ("099950002001", "Wohnzimmer", "state", 1.0, "present", COMET | {"name": "present"}),
        ("099950002001", "Wohnzimmer", "temperature_c", 22.0, None, COMET),
        ("099950002001", "Wohnzimmer", "state", 2.0, "setpoint",
         COMET | {"name": "thermostat_mode"}),
        ("099950002001", "Wohnzimmer", "setpoint_c", 21.0, None, COMET | {"kind": "target"}),
        ("099950002001", "Wohnzimmer", "setpoint_c", 21.0, None, COMET | {"kind": "comfort"}),
        ("099950002001", "Wohnzimmer", "setpoint_c", 17.0, None, COMET | {"kind": "eco"}),
    ]  # fmt: skip


def test_unknown_values_produce_no_point() -> None:
    dl = parse("unknown_values")
    assert dl.problems == ()
    assert rows(dl.readings) == [
        ("087610000435", "Waschmaschine", "state", 1.0, "present", DECT200 | {"name": "present"}),
        ("087611048080", "Repeater Keller", "state", 1.0, "present", REP100 | {"name": "present"}),
    ]  # fmt: skip


def test_absent_device_reports_only_its_presence() -> None:
    dl = parse("not_present")
    assert rows(dl.readings) == [
        ("087610000436", "Garten", "state", 0.0, "absent", DECT200 | {"name": "present"}),
    ]
    (device,) = dl.devices
    assert device.present is False
    assert device.stats == Stats.TEMPERATURE | Stats.VOLTAGE | Stats.POWER | Stats.ENERGY
    assert not device.wants_stats


DECT400 = {"model": "FRITZ!DECT 400"}


def test_buttons_are_states_at_the_press_time() -> None:
    dl = parse("buttons")
    assert dl.problems == ()
    assert [(*row, r.time) for row, r in zip(rows(dl.readings), dl.readings, strict=True)] == [
        ("116300123456", "Taster Flur", "state", 1.0, "present",
         DECT400 | {"name": "present"}, T),
        ("116300123456", "Taster Flur", "state", 0.0, "ok", DECT400 | {"name": "battery_low"}, T),
        ("116300123456", "Taster Flur", "battery_pct", 100.0, None, DECT400, T),
        ("116300123456-1", "Taster Flur: kurz", "state", 1.0, "pressed",
         DECT400 | {"name": "button"}, datetime(2024, 1, 7, 10, 0, tzinfo=UTC)),
        # the long press was never pressed (timestamp 0): no point
    ]  # fmt: skip


HANFUN = {"model": "HAN-FUN"}


def test_hanfun_units() -> None:
    dl = parse("hanfun")
    assert dl.problems == ()
    assert [(*row, r.time) for row, r in zip(rows(dl.readings), dl.readings, strict=True)] == [
        ("119340059978", "Sensor Terrasse", "state", 1.0, "present",
         HANFUN | {"name": "present"}, T),
        ("119340059978-1", "Terrassentür", "state", 1.0, "present",
         HANFUN | {"name": "present"}, T),
        ("119340059978-1", "Terrassentür", "state", 0.0, "closed", HANFUN | {"name": "alert"}, T),
        ("119340059978-2", "Bewegung Terrasse", "state", 1.0, "present",
         HANFUN | {"name": "present"}, T),
        ("119340059978-2", "Bewegung Terrasse", "state", 1.0, "alert",
         HANFUN | {"name": "alert"}, T),
        ("119340059978-3", "Klingel", "state", 1.0, "present", HANFUN | {"name": "present"}, T),
        ("119340059978-3", "Klingel", "state", 1.0, "pressed", HANFUN | {"name": "button"},
         datetime(2024, 1, 6, 18, 30, tzinfo=UTC)),
        ("119340059978-4", "Unbekannt", "state", 1.0, "present",
         HANFUN | {"name": "present"}, T),
    ]  # fmt: skip
    assert [d.unit_type for d in dl.devices] == [
        None,
        HanFunUnitType.DOOR_OPEN_CLOSE_DETECTOR,
        HanFunUnitType.MOTION_DETECTOR,
        HanFunUnitType.SIMPLE_BUTTON,
        HanFunUnitType.UNKNOWN,
    ]
    assert [d.stats for d in dl.devices] == [Stats.NONE] * 5


def test_newer_elements() -> None:
    dl = parse("newer_elements")
    assert dl.problems == ()
    d440 = {"model": "FRITZ!DECT 440"}
    blind = {"model": "Rollotron DECT 1213"}
    bulb = {"model": "FRITZ!DECT 500"}
    assert rows(dl.readings) == [
        ("130960007307", "Wohnzimmer Sensor", "state", 1.0, "present", d440 | {"name": "present"}),
        ("130960007307", "Wohnzimmer Sensor", "state", 0.0, "idle", d440 | {"name": "tx_busy"}),
        ("130960007307", "Wohnzimmer Sensor", "state", 0.0, "ok", d440 | {"name": "battery_low"}),
        ("130960007307", "Wohnzimmer Sensor", "battery_pct", 64.0, None, d440),
        ("130960007307", "Wohnzimmer Sensor", "temperature_c", 21.5, None, d440),
        ("130960007307", "Wohnzimmer Sensor", "humidity_pct", 48.0, None, d440),
        ("142760021372-1", "Rollladen", "state", 1.0, "present", blind | {"name": "present"}),
        ("142760021372-1", "Rollladen", "state", 1.0, "busy", blind | {"name": "tx_busy"}),
        ("142760021372-1", "Rollladen", "state", 1.0, "yes",
         blind | {"name": "end_positions_set"}),
        ("142760021372-1", "Rollladen", "state", 0.0, "manual", blind | {"name": "blind_mode"}),
        ("142760021372-1", "Rollladen", "level_pct", 50.0, None, blind | {"kind": "blind"}),
        ("130770013493-1", "Stehlampe", "state", 1.0, "present", bulb | {"name": "present"}),
        ("130770013493-1", "Stehlampe", "state", 0.0, "idle", bulb | {"name": "tx_busy"}),
        ("130770013493-1", "Stehlampe", "state", 1.0, "on", bulb | {"name": "on_off"}),
        ("130770013493-1", "Stehlampe", "level_pct", 100.0, None, bulb | {"kind": "level"}),
    ]  # fmt: skip
    assert dl.devices[0].stats == Stats.TEMPERATURE | Stats.HUMIDITY


def test_group_readings_are_scoped_and_members_resolved() -> None:
    dl = parse("group_powermeter")
    assert dl.problems == ()
    group = [r for r in dl.readings if r.device_id == "65:3A:18-901"]
    assert rows(group) == [
        ("65:3A:18-901", "Teich", "state", 1.0, "present", GROUP | {"name": "present"}),
        ("65:3A:18-901", "Teich", "state", 1.0, "on", GROUP | {"name": "switch"}),
        ("65:3A:18-901", "Teich", "state", 0.0, "unlocked", GROUP | {"name": "lock"}),
        ("65:3A:18-901", "Teich", "state", 0.0, "unlocked", GROUP | {"name": "device_lock"}),
        ("65:3A:18-901", "Teich", "state", 0.0, "manual", GROUP | {"name": "switch_mode"}),
        ("65:3A:18-901", "Teich", "power_w", 12.345, None, GROUP),
        ("65:3A:18-901", "Teich", "energy_wh", 1250.0, None, GROUP),
        ("65:3A:18-901", "Teich", "voltage_v", 229.75, None, GROUP),
    ]
    assert all(r.tag("scope") is None for r in dl.readings if r not in group)
    pump = [(r.measurement, r.value) for r in dl.readings if r.device == "Pumpe"]
    assert ("power_w", 12.345) in pump
    assert ("voltage_v", 230.0) in pump
    g = dl.device("65:3A:18-901")
    assert g is not None
    assert g.is_group
    assert g.members == ("087610000501", "087610000502")  # 99 is not in the list
    assert g.stats == Stats.NONE


def test_bad_values_are_reported_and_skipped() -> None:
    dl = parse("bad_values")
    assert [e.part for e in dl.problems] == [
        "device[ain=087610000601]/battery",
        "device[ain=087610000601]/powermeter/power",
        "device[ain=087610000601]/powermeter/voltage",
        "device[ain=087610000602]/present",
        "device[id=52]/@identifier",
        "device[ain=099950000700]/hkr/windowopenactiv",
        "device[ain=099950000700]/hkr/tsoll",
    ]
    assert all(isinstance(e, ParseError) for e in dl.problems)
    assert str(dl.problems[1]) == (
        "not an integer: '12a' (at device[ain=087610000601]/powermeter/power)"
    )
    assert str(dl.problems[3]) == "expected 0 or 1, got 2 (at device[ain=087610000602]/present)"
    assert rows(dl.readings) == [
        ("087610000601", "Kaputt", "state", 1.0, "present", DECT200 | {"name": "present"}),
        ("087610000601", "Kaputt", "energy_wh", 5.0, None, DECT200),
        # presence unknown: the values are still read
        ("087610000602", "Komisch", "temperature_c", -3.5, None, REP100),
        ("099950000700", "Regler", "state", 1.0, "present", DECT301 | {"name": "present"}),
        ("099950000700", "Regler", "temperature_c", 20.5, None, DECT301),  # tist: no <temperature>
        ("099950000700", "Regler", "setpoint_c", 21.0, None, DECT301 | {"kind": "comfort"}),
    ]
    assert [d.device_id for d in dl.devices] == ["087610000601", "087610000602", "099950000700"]
    assert dl.devices[1].present is None


#: The device-list fixtures that are not device lists at all.
BAD_DOCUMENTS = {"hostile_entity_expansion", "hostile_external_entity", "truncated", "wrong_root"}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("hostile_entity_expansion", "document type declarations are not accepted"),
        ("hostile_external_entity", "document type declarations are not accepted"),
        ("truncated", "not well-formed XML"),
        ("wrong_root", "root element is <SessionInfo>, expected <devicelist>"),
    ],
)
def test_bad_documents_raise_parse_error(case: str, message: str) -> None:
    assert case in BAD_DOCUMENTS
    with pytest.raises(ParseError, match=message) as info:
        parse(case)
    assert info.value.part == "devicelist"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"", "not well-formed XML"),
        (b"not xml at all", "not well-formed XML"),
        (b"<devicelist>", "not well-formed XML"),
        (b'<?xml version="1.0" encoding="utf-16"?><devicelist/>', "not well-formed XML"),
        ("<devicelist>\udcff</devicelist>".encode("utf-8", "surrogatepass"),
         "not well-formed XML"),
        (b"<a:devicelist xmlns:a='urn:x'/>", "root element is <{urn:x}devicelist>"),
        (b"<devicelist>" + b"<x>" * 300 + b"</x>" * 300 + b"</devicelist>",
         "not well-formed XML"),
    ],
)  # fmt: skip
def test_garbage_raises_parse_error(xml: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_devicelist(xml, site="home", time=T)
    assert info.value.part == "devicelist"


def test_a_press_after_2262_is_a_problem_and_no_point() -> None:
    """InfluxDB stores nothing after 2262-04-11: the press costs only itself."""
    xml = fixture("devicelist", "buttons").replace(
        b"<lastpressedtimestamp>1704621600<", b"<lastpressedtimestamp>20000000000<"
    )
    dl = parse_devicelist(xml, site="home", time=T)
    assert [(p.part, str(p)) for p in dl.problems] == [
        ("device[ain=116300123456]/button/lastpressedtimestamp",
         "timestamp out of range: 20000000000 "
         "(at device[ain=116300123456]/button/lastpressedtimestamp)"),
    ]  # fmt: skip
    assert [r for r in dl.readings if dict(r.tags).get("name") == "button"] == []
    assert [(r.measurement, r.value, r.time) for r in dl.readings] == [
        ("state", 1.0, T),  # present
        ("state", 0.0, T),  # battery_low
        ("battery_pct", 100.0, T),
    ]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_doctype_hidden_in_another_encoding_is_refused(encoding: str) -> None:
    xml = fixture("devicelist", "hostile_external_entity").replace(
        b'<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    )
    with pytest.raises(ParseError) as info:
        parse_devicelist(xml.decode().encode(encoding), site="home", time=T)
    assert info.value.part == "devicelist"


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_entity_bomb_in_another_encoding_is_refused_before_parsing(encoding: str) -> None:
    """Refused by the declaration check, not left to the parser's amplification limit."""
    xml = fixture("devicelist", "hostile_entity_expansion").replace(
        b'<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    )
    with pytest.raises(ParseError, match="document type declarations are not accepted") as info:
        parse_devicelist(xml.decode().encode(encoding), site="home", time=T)
    assert info.value.part == "devicelist"


def test_too_large_document() -> None:
    xml = b"<devicelist>" + b" " * (16 * 1024 * 1024) + b"</devicelist>"
    with pytest.raises(ParseError, match="document too large"):
        parse_devicelist(xml, site="home", time=T)


def test_empty_list_and_poll_time_in_utc() -> None:
    assert parse("empty") == DeviceList((), ())
    cet = timezone(timedelta(hours=1))
    dl = parse_devicelist(
        fixture("devicelist", "spec_example"),
        site="home",
        time=datetime(2024, 1, 7, 13, tzinfo=cet),
    )
    assert {r.time for r in dl.readings} == {T}
    assert {r.time.tzinfo for r in dl.readings} == {UTC}
    with pytest.raises(ValueError, match="naive"):
        parse_devicelist(b"<devicelist/>", site="home", time=datetime(2024, 1, 7))


def test_reparsing_is_identical() -> None:
    xml = fixture("devicelist", "spec_example")
    assert parse_devicelist(xml, site="home", time=T) == parse_devicelist(xml, site="home", time=T)


def test_a_hundred_devices() -> None:
    one = fixture("devicelist", "spec_example").split(b"<device ", 2)[1].split(b"</device>")[0]
    devices = b"".join(
        b"<device " + one.replace(b"08761 0000434", f"08761 {i:07d}".encode()) + b"</device>"
        for i in range(100)
    )
    dl = parse_devicelist(b"<devicelist>" + devices + b"</devicelist>", site="home", time=T)
    assert len(dl.devices) == 100
    assert len(dl.readings) == 900
    assert len({r.device_id for r in dl.readings}) == 100


# --------------------------------------------------------------------------- fast paths
# The parser looks documented texts up in tables made with the normaliser and builds its
# readings without Reading's checks; these tests hold both to the slow path.


def _held_to_reading_checks(dl: DeviceList) -> None:
    for r in dl.readings:
        assert type(r) is Reading
        assert type(r.value) is float
        assert Reading(*r) == r  # passes the checks and comes out unchanged


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "devicelist").glob("*.xml")), ids=lambda p: p.stem
)
def test_fixture_readings_pass_the_reading_checks(path: Path) -> None:
    if path.stem in BAD_DOCUMENTS:  # each is checked for its error above
        with pytest.raises(ParseError):
            parse_devicelist(path.read_bytes(), site="home", time=T)
        return
    dl = parse_devicelist(path.read_bytes(), site="home", time=T)
    assert dl.devices or path.stem == "empty"
    _held_to_reading_checks(dl)


@settings(max_examples=300, deadline=None)
@given(generated_devicelist())
def test_generated_readings_pass_the_reading_checks(xml: bytes) -> None:
    try:
        dl = parse_devicelist(xml, site="home", time=T)
    except ParseError:
        return
    _held_to_reading_checks(dl)


def _hkr_list(texts: dict[str, str]) -> bytes:
    def el(tag: str) -> str:
        return f"<{tag}>{texts[tag]}</{tag}>" if tag in texts else ""

    return (
        '<devicelist><device identifier="09995 0421775" id="21" productname="FRITZ!DECT 302">'
        + el("present") + el("txbusy") + "<name>Bad</name>"
        + "<switch>" + el("state") + el("mode") + el("lock") + "</switch>"
        + "<hkr>" + el("tist") + el("tsoll") + el("komfort") + el("absenk") + el("errorcode")
        + el("boostactive") + "<nextchange>" + el("tchange") + "</nextchange></hkr>"
        + "</device></devicelist>"
    ).encode()  # fmt: skip


DOCUMENTED = {
    "present": ["0", "1"],
    "txbusy": ["0", "1"],
    "state": ["0", "1"],
    "lock": ["0", "1"],
    "boostactive": ["0", "1"],
    "mode": ["auto", "manuell"],
    "tsoll": ["16", "17", "40", "56", "253", "254", "255"],
    "komfort": ["16", "41", "56", "253", "254", "255"],
    "absenk": ["16", "33", "56", "253", "254", "255"],
    "tchange": ["16", "39", "56", "253", "254", "255"],
    "tist": ["16", "38", "56", "253", "254", "255"],
    "errorcode": ["0", "1", "2", "3", "4", "5", "6"],
}


@pytest.mark.parametrize(
    ("tag", "text"), [(tag, text) for tag, texts in DOCUMENTED.items() for text in texts]
)
def test_documented_texts_read_as_through_the_normaliser(tag: str, text: str) -> None:
    """A documented text and the same text with spaces around it (which misses the
    tables and goes through raw_int and the normaliser) give the same list."""
    texts = {t: values[-1] for t, values in DOCUMENTED.items()} | {"present": "1", tag: text}
    padded = texts | {tag: f" {text} "}
    fast = parse_devicelist(_hkr_list(texts), site="home", time=T)
    slow = parse_devicelist(_hkr_list(padded), site="home", time=T)
    assert fast == slow
    assert fast.problems == ()


def test_members_of_a_group_listed_before_them_first_device_wins() -> None:
    xml = (
        b"<devicelist>"
        b'<group identifier="65:3A:18-900" id="900"><present>1</present><name>G</name>'
        b"<groupinfo><members>17, 18,99</members></groupinfo></group>"
        b'<device identifier="08761 0000017" id="17"><present>1</present></device>'
        b'<device identifier="08761 0000018" id=" 18 "><present>1</present></device>'
        b'<device identifier="08761 0000098" id="18"><present>1</present></device>'
        b"</devicelist>"
    )
    group = parse_devicelist(xml, site="home", time=T).device("65:3A:18-900")
    assert group is not None
    assert group.members == ("087610000017", "087610000018")


def test_device_info_is_the_same_in_the_next_poll() -> None:
    xml = fixture("devicelist", "hanfun")
    first = parse_devicelist(xml, site="home", time=T)
    later = parse_devicelist(xml, site="home", time=T + timedelta(minutes=1))
    assert later.devices == first.devices
    assert later.problems == first.problems


# --------------------------------------------------------------------------- per-device cache
# What a device's attributes say is read once and reused while they stay the same; these
# tests change one thing between two polls and expect the second poll to show it.


def _plug(attributes: str, name: str = "Plug", power_mw: str = "1500") -> bytes:
    return (
        f"<devicelist><device {attributes}><present>1</present><name>{name}</name>"
        f"<powermeter><power>{power_mw}</power></powermeter></device></devicelist>"
    ).encode()


PLUG = 'identifier="08761 0000434" id="17" functionbitmask="896" fwversion="04.16" ' \
    'manufacturer="AVM" productname="FRITZ!DECT 200"'  # fmt: skip


def _power(dl: DeviceList) -> Reading:
    (power,) = [r for r in dl.readings if r.measurement == "power_w"]
    return power


def test_changed_attributes_show_in_the_next_poll() -> None:
    first = parse_devicelist(_plug(PLUG), site="home", time=T)
    later = T + timedelta(minutes=1)
    renamed = parse_devicelist(_plug(PLUG.replace("FRITZ!DECT 200", "FRITZ!DECT 210")),
                               site="home", time=later)  # fmt: skip
    assert _power(first).tags == (("model", "FRITZ!DECT 200"),)
    assert _power(renamed).tags == (("model", "FRITZ!DECT 210"),)
    assert renamed.devices[0].product == "FRITZ!DECT 210"
    updated = parse_devicelist(_plug(PLUG.replace("04.16", "04.25")), site="home", time=later)
    assert updated.devices[0].fwversion == "04.25"
    moved = parse_devicelist(_plug(PLUG.replace("0000434", "0000435")), site="home", time=later)
    assert _power(moved).device_id == "087610000435"
    assert _power(moved).device == "Plug"
    assert (_power(moved).value, _power(moved).time) == (1.5, later)


def test_changed_name_and_values_show_in_the_next_poll() -> None:
    parse_devicelist(_plug(PLUG), site="home", time=T)
    later = T + timedelta(minutes=1)
    dl = parse_devicelist(_plug(PLUG, name="Kitchen", power_mw="2250"), site="home", time=later)
    assert (_power(dl).device, _power(dl).value, _power(dl).time) == ("Kitchen", 2.25, later)
    assert dl.devices[0].name == "Kitchen"
    gone = parse_devicelist(_plug(PLUG).replace(b"<present>1", b"<present>0"), site="home",
                            time=later)  # fmt: skip
    assert gone.devices[0].present is False
    assert [(r.measurement, r.label) for r in gone.readings] == [("state", "absent")]


def test_a_bad_bitmask_is_reported_in_every_poll() -> None:
    xml = _plug(PLUG.replace('functionbitmask="896"', 'functionbitmask="x"'))
    for minute in range(2):
        dl = parse_devicelist(xml, site="home", time=T + timedelta(minutes=minute))
        assert [p.part for p in dl.problems] == ["device[ain=087610000434]/@functionbitmask"]
        assert dl.devices[0].functionbitmask == 0
        assert _power(dl).value == 1.5


# --------------------------------------------------------------------------- unchanged devices
# A device whose bytes did not change since the last poll of its site gives what it gave
# then, at the new poll's time; these tests check that against reading it afresh.


_FRESH_SITES = itertools.count()


def _fresh(xml: bytes, time: datetime) -> DeviceList:
    """The list as read with nothing to reuse (a site never polled before)."""
    return parse_devicelist(xml, site=f"fresh-{next(_FRESH_SITES)}", time=time)


def _same_but_site(a: DeviceList, b: DeviceList) -> None:
    assert a.devices == b.devices
    assert [r._replace(site="") for r in a.readings] == [r._replace(site="") for r in b.readings]
    assert [(str(p), p.part) for p in a.problems] == [(str(p), p.part) for p in b.problems]


@pytest.mark.parametrize("case", ["bad_values", "buttons", "hanfun", "spec_example",
                                  "group_powermeter", "newer_elements"])  # fmt: skip
def test_an_unchanged_list_gives_what_it_gave_at_the_new_time(case: str) -> None:
    xml = fixture("devicelist", case)
    later = T + timedelta(minutes=1)
    first = parse_devicelist(xml, site="unchanged", time=T)
    again = parse_devicelist(xml, site="unchanged", time=later)
    _same_but_site(again, _fresh(xml, later))
    assert [r.site for r in again.readings] == ["unchanged"] * len(again.readings)
    polled = [r for r in again.readings if r.time == later]
    assert len(polled) >= len(again.readings) - 2  # all but button presses
    assert [r._replace(time=T) for r in polled] == [r for r in first.readings if r.time == T]
    _held_to_reading_checks(again)
    assert (case == "bad_values") == bool(again.problems)


def test_a_button_press_keeps_its_own_time_when_unchanged() -> None:
    xml = fixture("devicelist", "buttons")
    first = parse_devicelist(xml, site="buttons", time=T)
    again = parse_devicelist(xml, site="buttons", time=T + timedelta(minutes=5))
    presses = [r for r in first.readings if r.label == "pressed"]
    assert presses
    assert [r for r in again.readings if r.label == "pressed"] == presses


def test_a_changed_device_is_read_again_and_the_others_reused() -> None:
    xml = fixture("devicelist", "spec_example")
    parse_devicelist(xml, site="changed", time=T)
    power = next(r for r in _fresh(xml, T).readings if r.measurement == "power_w")
    raw_mw = round(power.value * 1000)
    changed = xml.replace(f"<power>{raw_mw}</power>".encode(), b"<power>4321</power>", 1)
    assert changed != xml
    later = T + timedelta(minutes=1)
    dl = parse_devicelist(changed, site="changed", time=later)
    _same_but_site(dl, _fresh(changed, later))
    assert [r.value for r in dl.readings if r.device_id == power.device_id
            and r.measurement == "power_w"] == [4.321]  # fmt: skip


def test_a_device_reads_anew_when_the_document_starts_differently() -> None:
    """The same bytes in another declared encoding are other texts."""
    device = ('<device identifier="08761 0000434" id="17" productname="FRITZ!DECT 200">'
              "<present>1</present><name>Küche</name></device>")  # fmt: skip
    utf8 = b'<?xml version="1.0" encoding="UTF-8"?><devicelist>' + device.encode() + (
        b"</devicelist>")
    latin1 = utf8.replace(b"UTF-8", b"ISO-8859-1")
    assert parse_devicelist(utf8, site="encoding", time=T).devices[0].name == "Küche"
    dl = parse_devicelist(latin1, site="encoding", time=T + timedelta(minutes=1))
    assert dl.devices[0].name == "KÃ¼che"
    assert {r.device for r in dl.readings} == {"KÃ¼che"}


def test_a_start_tag_in_a_comment_does_not_confuse_the_reuse() -> None:
    xml = fixture("devicelist", "spec_example")
    tricky = xml.replace(b"<devicelist", b"<!-- <device identifier='1'> --><devicelist", 1)
    parse_devicelist(tricky, site="comment", time=T)
    later = T + timedelta(minutes=1)
    _same_but_site(parse_devicelist(tricky, site="comment", time=later), _fresh(xml, later))
