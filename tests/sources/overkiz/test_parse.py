"""Overkiz parsers: the real setups and events (conformance), hand-written cases, fuzz."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import ParseError
from collector.sources.overkiz.parse import (
    State,
    parse_events,
    parse_setup,
    parse_states,
    typed_value,
)
from collector.sources.overkiz.units import state_unit


def real(shared_dir: Path, name: str) -> object:
    return json.loads((shared_dir / "fixtures" / "overkiz" / name).read_text(encoding="utf-8"))


def test_real_cloud_events_are_typed_from_strings(shared_dir: Path) -> None:
    changes = parse_events(real(shared_dir, "events/events.json")).items
    first = changes[0]
    assert first.device_url == "io://9876-1234-8767/4468654#1"
    assert first.time_ms == 1631130646544
    assert first.states == (State("core:ElectricEnergyConsumptionState", 23247220),)
    # type-0 tariff states carry no value and give nothing
    second = changes[1]
    assert second.states == (
        State("core:ConsumptionTariff0State", 7139031),
        State("core:ElectricEnergyConsumptionState", 7139031),
    )
    moving = next(c for c in changes if c.time_ms == 1631130761531)
    assert State("core:MovingState", True) in moving.states
    assert State("core:TargetClosureState", 43) in moving.states
    last = next(c for c in changes if c.time_ms == 1631130831672)
    assert last.states[-1] == State("core:MovingState", False)
    assert State("core:OpenClosedState", "open") in last.states


def test_real_cozytouch_setup(shared_dir: Path) -> None:
    parsed = parse_setup(real(shared_dir, "setup/setup_cozytouch_4.json"))
    assert parsed.problems == ()
    devices = {d.url: d for d in parsed.items}
    assert len(devices) == 33
    meter = devices["io://****-****-6923/11301395#5"]
    assert meter.base_url == "io://****-****-6923/11301395"
    assert meter.model == "io:CumulatedElectricalEnergyConsumptionIOSystemDeviceSensor"
    assert State("core:ElectricEnergyConsumptionState", 728000) in meter.states
    assert meter.available is True
    energy = "core:ElectricEnergyConsumptionState"
    assert state_unit(energy, meter.attributes, schema_unit="Wh") == "Wh"
    sensor = devices["io://****-****-6923/11301395#2"]
    assert State("core:TemperatureState", 14.0) in sensor.states
    assert state_unit("core:TemperatureState", sensor.attributes, schema_unit="°C") == "°C"
    heater = devices["io://****-****-6923/11301395#1"]
    assert State("core:ComfortRoomTemperatureState", 18.5) in heater.states
    comfort = "core:ComfortRoomTemperatureState"
    assert state_unit(comfort, heater.attributes, schema_unit="°C") is None
    assert state_unit(comfort, heater.attributes, schema_unit="°C", default="°C") == "°C"
    assert heater.room is not None and sensor.room == heater.room
    co2 = devices["io://****-****-6923/15021786#2"]
    assert State("core:CO2ConcentrationState", 432) in co2.states


@pytest.mark.parametrize(
    "name", ["setup/setup_tahoma_climate.json", "setup/setup_local_with_climate.json"]
)
def test_other_real_setups_parse(shared_dir: Path, name: str) -> None:
    parsed = parse_setup(real(shared_dir, name))
    assert parsed.items and parsed.problems == ()
    assert all(d.url and d.label for d in parsed.items)


def test_a_real_setup_with_date_states_parses_whole(shared_dir: Path) -> None:
    """setup_tahoma_be.json has two states of data type 5 (date-time, epoch ms)."""
    parsed = parse_setup(real(shared_dir, "setup/setup_tahoma_be.json"))
    assert parsed.problems == ()
    assert len(parsed.items) == 15
    valve = next(d for d in parsed.items if d.model == "io:HeatingValveIOComponent")
    assert State("core:DerogationStartDateTimeState", 1641862917000) in valve.states
    assert State("core:BatteryLevelState", 70.0) in valve.states
    sensor = next(d for d in parsed.items if d.model == "io:TemperatureIOSystemSensor")
    assert State("core:TemperatureState", 19.4) in sensor.states


def test_real_device_states(shared_dir: Path) -> None:
    assert parse_states(real(shared_dir, "events/device-states.json")).items == (
        State("core:StatusState", "available"),
        State("core:ClosureState", 0),
        State("core:OpenClosedState", "open"),
    )


def test_a_device_is_in_the_room_of_its_own_place() -> None:
    doc = {
        "rootPlace": {
            "oid": "house",
            "label": "House",
            "subPlaces": [
                {
                    "oid": "ground",
                    "label": "Ground floor",
                    "subPlaces": [{"oid": "living", "label": "Living room"}],
                }
            ],
        },
        "devices": [
            {"deviceURL": "io://1/1#1", "label": "Heater", "placeOID": "living", "widget": "W"},
            {"deviceURL": "io://1/2", "label": "Meter", "placeOID": "house", "states": []},
            {"deviceURL": "rts://1/3", "label": "Blind", "controllableName": "rts:Blind"},
        ],
    }
    heater, meter, blind = parse_setup(doc).items
    assert (heater.room, heater.model) == ("Living room", "W")
    assert meter.room == "House"
    assert (blind.room, blind.model, blind.states) == (None, "rts:Blind", ())


def test_unit_precedence_state_attribute_first() -> None:
    energy, power = "core:ElectricEnergyConsumptionState", "core:ElectricPowerConsumptionState"
    attributes = {
        "core:MeasuredValueType": "core:ElectricalEnergyInWh",
        # the per-state attribute as real setups name it: <stateName>MeasuredValueType
        "core:ElectricEnergyConsumptionStateMeasuredValueType": "core:ElectricalEnergyInKWh",
        "core:ElectricPowerConsumptionStateMeasuredValueType": "core:ElectricalPowerInKW",
    }
    assert state_unit(energy, attributes, schema_unit="Wh") == "kWh"
    assert state_unit(power, attributes, schema_unit="W") == "kW"
    # a name with a colon is no attribute of the service
    assert state_unit(energy, {f"{energy}:MeasuredValueType": "core:ElectricalEnergyInKWh"},
                      schema_unit="Wh", default="Wh") == "Wh"
    assert state_unit(energy, {"core:MeasuredValueType": "core:ElectricalEnergyInKWh"},
                      schema_unit="Wh") == "kWh"
    # the device's type names its main measurement: a power state is not in Wh
    device = {"core:MeasuredValueType": "core:ElectricalEnergyInWh"}
    assert state_unit(power, device, schema_unit="W") is None
    assert state_unit(power, device, schema_unit="W", default="W") == "W"
    # an answer's unit counts as the device's does, before the device's attribute
    assert state_unit(energy, device, schema_unit="Wh",
                      answer_unit="core:ElectricalEnergyInKWh") == "kWh"
    assert state_unit("core:BatteryLevelState", {}, schema_unit="%",
                      answer_unit="core:TemperatureInCelcius", default="%") == "%"
    assert state_unit("core:X", {"core:MeasuredValueType": "core:Unheard"}, schema_unit="W") is None


def test_one_odd_state_or_device_costs_only_itself() -> None:
    doc = {"devices": [
        {"deviceURL": "io://1/1#1", "label": "Valve", "states": [
            {"name": "core:TemperatureState", "type": 2, "value": "warm"},
            {"name": "core:BatteryLevelState", "type": 1, "value": 61},
            {"name": "core:SecretState", "type": 9, "value": "hunter2"},
            {"name": "core:BlobState", "type": 4, "value": "AAEC"},
            {"name": "core:FutureState", "type": 42, "value": 3},
            {"type": 1, "value": 2},
        ]},
        {"label": "no url"},
        {"deviceURL": "io://1/2#1", "label": "Sensor", "available": False, "states": [
            {"name": "core:TemperatureState", "type": 2, "value": 20.5,
             "lastUpdateTime": 1_767_225_600_000}]},
    ]}
    parsed = parse_setup(doc)
    valve, sensor = parsed.items
    assert valve.states == (
        State("core:BatteryLevelState", 61),
        State("core:BlobState", "AAEC"),
        State("core:FutureState", 3),
    )
    assert sensor.available is False
    assert sensor.states == (State("core:TemperatureState", 20.5, 1_767_225_600_000),)
    assert [str(p) for p in parsed.problems] == [
        "state value 'warm' is not of type 2 (at io://1/1#1 states core:TemperatureState)",
        "state without a name (at io://1/1#1 states[5])",
        "device without a deviceURL (at devices[1])",
    ]
    assert "hunter2" not in repr(parsed)


def test_an_odd_state_in_events_and_states_costs_only_itself() -> None:
    events = parse_events([
        {"name": "DeviceStateChangedEvent", "deviceURL": "io://1/1#1", "timestamp": 5,
         "deviceStates": [{"name": "core:TemperatureState", "type": 2, "value": "x"},
                          {"name": "core:RelativeHumidityState", "type": 2, "value": "55.5"}]},
        "garbage",
    ])
    assert events.items[0].states == (State("core:RelativeHumidityState", 55.5),)
    assert len(events.problems) == 2
    states = parse_states([{"name": "core:ClosureState", "type": 1, "value": "half"},
                           {"name": "core:OpenClosedState", "type": 3, "value": "open",
                            "lastUpdateTime": 1_000}], "io://1/1#1")
    assert states.items == (State("core:OpenClosedState", "open", 1_000),)
    assert "io://1/1#1 states core:ClosureState" in str(states.problems[0])


@pytest.mark.parametrize(
    ("data_type", "raw", "value"),
    [
        (1, "21", 21),
        (2, "21.5", 21.5),
        (2, 20, 20.0),
        (3, "on", "on"),
        (6, "false", False),
        (10, "[1, 2]", [1, 2]),
        (11, '{"a": 1}', {"a": 1}),
        (0, "x", None),
        (4, "AAEC", "AAEC"),
        (5, 1641862917000, 1641862917000),
        (5, "1641862917000", 1641862917000),
        (9, "secret", None),
        (7, "1", "1"),
    ],
)
def test_typed_value(data_type: int, raw: object, value: object) -> None:
    assert typed_value(data_type, raw, part="p") == value


@pytest.mark.parametrize(("data_type", "raw"), [(1, "abc"), (2, "nan"), (6, "yes"), (4, 12)])
def test_typed_value_rejects(data_type: int, raw: object) -> None:
    with pytest.raises(ParseError, match="at p"):
        typed_value(data_type, raw, part="p")


def _containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Lists and objects of ``inner``: the recursive step of JSON (a named function, so that
    hypothesis sees it use its argument)."""
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner)


JSON: st.SearchStrategy[object] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    _containers,
    max_leaves=20,
)
STATE = st.fixed_dictionaries(
    {"name": st.text(max_size=10),
     "type": st.sampled_from([0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 7])},
    optional={"value": JSON},
)


@given(
    st.one_of(
        JSON,
        st.lists(
            st.fixed_dictionaries(
                {"name": st.just("DeviceStateChangedEvent"), "deviceURL": st.text(max_size=5)},
                optional={"timestamp": JSON, "deviceStates": st.lists(STATE, max_size=4)},
            ),
            max_size=4,
        ),
    )
)
def test_fuzz_events_only_typed_errors(doc: object) -> None:
    with contextlib.suppress(ParseError):
        parse_events(doc)


@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {
                "devices": st.lists(
                    st.fixed_dictionaries(
                        {"deviceURL": st.text(max_size=5)},
                        optional={
                            "label": JSON,
                            "placeOID": JSON,
                            "attributes": JSON,
                            "states": st.lists(STATE, max_size=3),
                        },
                    ),
                    max_size=3,
                )
            },
            optional={"rootPlace": JSON},
        ),
    )
)
def test_fuzz_setup_only_typed_errors(doc: object) -> None:
    with contextlib.suppress(ParseError):
        parse_setup(doc)
