"""Status and server-status answers, from fixtures written after the Integration Kit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import ParseError
from collector.sources.thinknx.parse import (
    ObjectInfo,
    object_readings,
    parse_server_status,
    parse_status,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "thinknx"
GUID = "1IzPszHWAEuvzxtXBMrkzWQ"
T = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def body(endpoint: str, case: str) -> bytes:
    return (FIXTURES / endpoint / f"{case}.json").read_bytes()


def status(endpoint: str, case: str, controller: str | None = None) -> float | None:
    return parse_status(body(endpoint, case), controller=controller or endpoint, guid=GUID,
                        what="test object")


def readings(kind: str, values: dict[str, float | None], **extra: str) -> list[tuple[object, ...]]:
    """(measurement, value, kind tag, name tag, label, model tag) of an object's readings."""
    obj = ObjectInfo(GUID, kind, "Living", "Ground floor", extra.get("quantity"),
                     extra.get("unit"))
    out: list[tuple[object, ...]] = []
    for r in object_readings(obj, values, site="villa", time=T):
        assert r.time == T and r.source == "thinknx" and r.site == "villa"
        assert r.device_id == GUID and r.device == "Living"
        assert r.tag("room") == "Ground floor"
        assert type(r.value) is float
        out.append((r.measurement, r.value, r.tag("kind"), r.tag("name"), r.label,
                    r.tag("model")))
    return out


@pytest.mark.parametrize(("endpoint", "case", "expected"), [
    ("actualtemp", "number", 21.5),
    ("actualtemp", "string", 21.5),
    ("actualtemp", "unknown", None),
    ("setpointstatus", "number", 20.5),
    ("tempmodestatus", "economy", 2.0),
    ("chronoenstatus", "enabled", 1.0),
    ("hvacpowerstatus", "on", 1.0),
    ("hvacsetpointstatus", "number", 24.0),
    ("hvacmodestatus", "auto", 4.0),
    ("hvacfanset", "average", 2.0),
    ("hvacfanstatus", "maximum", 3.0),  # answers with the namespace "hvacfanset"
    ("powerstatus", "off", 0.0),
    ("powerlevelstatus", "number", 55.0),
    ("heightlevelstatus", "number", 30.0),
    ("blindanglestatus", "string", 45.0),
    ("getvalue", "kw", 1.25),
])
def test_every_status_endpoint(endpoint: str, case: str, expected: float | None) -> None:
    value = status(endpoint, case)
    assert value == expected
    assert value is None or type(value) is float


def test_thermostat_readings() -> None:
    got = readings("thermostat", {"actualtemp": 21.5, "setpointstatus": 20.5,
                                  "tempmodestatus": 2.0, "chronoenstatus": 1.0})
    assert got == [
        ("temperature_c", 21.5, None, None, None, "thermostat"),
        ("setpoint_c", 20.5, "target", None, None, "thermostat"),
        ("state", 2.0, None, "temp_mode", "economy", "thermostat"),
        ("state", 1.0, None, "chrono", "enabled", "thermostat"),
    ]


def test_hvac_light_dimmer_blind_readings() -> None:
    assert readings("hvac", {"hvacpowerstatus": 1.0, "hvacsetpointstatus": 24.0,
                             "hvacmodestatus": 0.0, "hvacfanset": 3.0}) == [
        ("state", 1.0, None, "on_off", "on", "hvac"),
        ("setpoint_c", 24.0, "target", None, None, "hvac"),
        ("state", 0.0, None, "hvac_mode", "cooling", "hvac"),
        ("state", 3.0, None, "fan_speed", "maximum", "hvac"),
    ]
    assert readings("light", {"powerstatus": 0.0}) == [
        ("state", 0.0, None, "switch", "off", "light")]
    # "Lights, switches and bulbs": a dimmer has the Power and the PowerLevel controller
    assert readings("dimmer", {"powerstatus": 1.0, "powerlevelstatus": 55.0}) == [
        ("state", 1.0, None, "switch", "on", "dimmer"),
        ("level_pct", 55.0, "dimmer", None, None, "dimmer")]
    assert readings("blind", {"heightlevelstatus": 30.0, "blindanglestatus": 45.0}) == [
        ("level_pct", 30.0, "blind", None, None, "blind"),
        ("level_pct", 45.0, "slats", None, None, "blind"),
    ]


@pytest.mark.parametrize(("quantity", "unit", "raw", "measurement", "value"), [
    ("power", "kW", 1.25, "power_w", 1250.0),
    ("energy", "kWh", 12.5, "energy_wh", 12500.0),
    ("temperature", "°C", 19.5, "temperature_c", 19.5),
    ("luminance", "klx", 2.0, "luminance_lx", 2000.0),
    ("co2", "ppm", 640.0, "co2_ppm", 640.0),
])
def test_analog_through_the_normaliser(quantity: str, unit: str, raw: float, measurement: str,
                                       value: float) -> None:
    got = readings("analog", {"getvalue": raw}, quantity=quantity, unit=unit)
    assert got == [(measurement, value, None, None, None, "analog")]


def test_analog_level_carries_the_kind_the_schema_asks_for() -> None:
    got = readings("analog", {"getvalue": 42.0}, quantity="level", unit="%")
    assert got == [("level_pct", 42.0, "level", None, None, "analog")]


def test_unknown_values_give_no_point() -> None:
    assert readings("thermostat", {"actualtemp": None, "tempmodestatus": 7.0,
                                   "chronoenstatus": 0.5}) == []
    assert readings("dimmer", {"powerlevelstatus": 140.0}) == []  # "[0 to 100]"
    assert status("tempmodestatus", "undocumented") == 7.0  # the code is dropped later


@pytest.mark.parametrize(("doc", "part"), [
    ({"namespace": "setpointstatus", "guid": GUID, "status": 1}, "namespace"),
    ({"namespace": "actualtemp", "guid": "other", "status": 1}, "guid"),
    ({"namespace": "actualtemp", "guid": GUID}, "status"),
    ({"namespace": "actualtemp", "guid": GUID, "status": "warm"}, "status"),
    ({"namespace": "actualtemp", "guid": GUID, "status": True}, "status"),
    ({"namespace": "actualtemp", "guid": GUID, "status": [1]}, "status"),
    ({"error": "device not found"}, "actualtemp"),
])
def test_bad_answers_are_parse_errors_naming_the_part(doc: object, part: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_status(json.dumps(doc).encode(), controller="actualtemp", guid=GUID,
                     what="thermostat 'Living' (guid x)")
    assert caught.value.part == part
    assert "thermostat 'Living' (guid x)" in str(caught.value)


@pytest.mark.parametrize("raw", [b"", b"<html>busy</html>", b"[1, 2]", b"null", b"{"])
def test_not_json_or_not_an_object(raw: bytes) -> None:
    with pytest.raises(ParseError, match="test object"):
        parse_status(raw, controller="actualtemp", guid=GUID, what="test object")


def test_server_status_english() -> None:
    got = parse_server_status(body("system/serverStatus", "english"), site="villa",
                              device_id="server:10.0.0.5", device="villa server", time=T)
    assert got.version == "1.1.10.12"
    assert got.problems == ()
    assert [(r.measurement, r.value, r.tag("kind")) for r in got.readings] == [
        ("uptime_s", 2 * 86400 + 3600 + 180.0, "process"),
        ("uptime_s", 23 * 86400 + 4 * 3600 + 720.0, "server"),
        ("clients", 3.0, None),
        ("pbx_users", 2.0, None),  # "101,102"
        ("config_time_s", datetime(2024, 6, 1, 8, 15, 30, tzinfo=UTC).timestamp(), None),
    ]
    assert all(r.device_id == "server:10.0.0.5" and r.time == T for r in got.readings)


def test_server_status_italian_and_numeric_strings() -> None:
    got = parse_server_status(body("system/serverStatus", "italian"), site="villa",
                              device_id="server:cloud", device="villa server", time=T)
    values = {(r.measurement, r.tag("kind")): r.value for r in got.readings}
    assert values[("uptime_s", "process")] == 86400 + 3600 + 60.0
    assert values[("uptime_s", "server")] == 5 * 3600.0
    assert values[("clients", None)] == 0.0
    assert values[("pbx_users", None)] == 0.0  # "": nobody connected, a real zero


def server_status(**fields: object) -> tuple[dict[str, float], tuple[str, ...]]:
    got = parse_server_status(json.dumps({"namespace": "system/serverStatus"} | fields).encode(),
                              site="villa", device_id="server:x", device="x", time=T)
    return {r.measurement: r.value for r in got.readings}, got.problems


ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(("raw", "utc"), [
    # "hh:mm:ss YYYY-MM-DD" is the server's own clock: Rome is UTC+2 in summer, +1 in winter
    ("08:15:30 2024-06-01", datetime(2024, 6, 1, 6, 15, 30, tzinfo=UTC)),
    ("08:15:30 2024-01-15", datetime(2024, 1, 15, 7, 15, 30, tzinfo=UTC)),
    ("00:30:00 2024-01-01", datetime(2023, 12, 31, 23, 30, tzinfo=UTC)),
    # the hour that occurs twice when summer time ends: the first of the two (still +2)
    ("02:30:00 2024-10-27", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
])
def test_config_time_is_read_in_the_servers_zone(raw: str, utc: datetime) -> None:
    got = parse_server_status(
        json.dumps({"namespace": "system/serverStatus", "config_time": raw}).encode(),
        site="villa", device_id="server:x", device="x", time=T, tz=ROME)
    assert [(r.measurement, r.value) for r in got.readings] == [
        ("config_time_s", utc.timestamp())]


@pytest.mark.parametrize(("raw", "users"), [
    ("101", 1.0),
    ("101,102,205", 3.0),
    (" 101 , 102 ", 2.0),
    ("101,", 1.0),
    ("", 0.0),
    (" ", 0.0),
])
def test_pbx_users_are_counted(raw: str, users: float) -> None:
    assert server_status(pbx_users=raw) == ({"pbx_users": users}, ())


def test_pbx_users_missing_or_unreadable() -> None:
    assert server_status() == ({}, ())
    assert server_status(pbx_users=None) == ({}, ())
    got, problems = server_status(pbx_users={"101": 1}, connected_clients=1)
    assert got == {"clients": 1.0}
    assert len(problems) == 1 and "pbx_users" in problems[0]


def test_server_status_garbled_fields_are_problems_the_rest_is_kept() -> None:
    got = parse_server_status(body("system/serverStatus", "garbled"), site="villa",
                              device_id="server:cloud", device="villa server", time=T)
    assert [(r.measurement, r.value) for r in got.readings] == [
        ("uptime_s", 3 * 86400.0), ("clients", 2.0)]
    assert len(got.problems) == 2
    assert "process_uptime" in got.problems[0] and "config_time" in got.problems[1]


_json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["namespace", "guid", "status", "error",
                                            "comm_obj", "x"]), _json_values, max_size=5),
       raw=st.binary(max_size=40))
def test_fuzz_only_typed_errors(doc: dict[str, object], raw: bytes) -> None:
    for payload in (json.dumps(doc).encode(), raw):
        try:
            value = parse_status(payload, controller="actualtemp", guid=GUID, what="fuzz")
        except ParseError:
            continue
        assert value is None or type(value) is float
        try:
            got = parse_server_status(payload, site="s", device_id="server:x", device="x",
                                      time=T)
        except ParseError:
            continue
        assert all(type(r.value) is float for r in got.readings)
