"""Overkiz states -> readings: measurements, units, tags and the event's own time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.sources.overkiz.parse import Device, State, parse_events, parse_setup
from collector.sources.overkiz.readings import reading, stamp

ENERGY = "core:ElectricEnergyConsumptionState"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def device(attributes: dict[str, str], model: str = "io:Meter", room: str = "Hall") -> Device:
    return Device("io://1234-5678-9012/42#5", "Meter", room, model, attributes, ())


@pytest.mark.parametrize(
    ("measured", "state", "raw", "measurement", "value"),
    [
        ("core:ElectricalEnergyInWh", ENERGY, 728000, "energy_wh", 728000.0),
        ("core:ElectricalEnergyInKWh", ENERGY, 12.5, "energy_wh", 12500.0),
        ("core:ElectricalPowerInW", "core:ElectricPowerConsumptionState", 230, "power_w", 230.0),
        ("core:ElectricalPowerInKW", "core:ElectricPowerConsumptionState", 1.5, "power_w", 1500.0),
        ("core:TemperatureInCelcius", "core:TemperatureState", 21.5, "temperature_c", 21.5),
        ("core:TemperatureInKelvin", "core:TemperatureState", 300.0, "temperature_c", 26.85),
    ],
)
def test_unit_table(
    measured: str, state: str, raw: float, measurement: str, value: float
) -> None:
    meter = device({"core:MeasuredValueType": measured})
    point = reading(meter, State(state, raw), NOW, site="home")
    assert point is not None
    assert point.measurement == measurement
    assert point.value == pytest.approx(value)
    assert (point.source, point.site, point.device_id, point.device) == (
        "overkiz", "home", "io://1234-5678-9012/42#5", "Meter"
    )
    assert point.tags == (("model", "io:Meter"), ("room", "Hall"))
    assert point.time == NOW


def test_a_missing_unit_is_the_state_default_an_unknown_one_gives_no_point() -> None:
    """Defaults as Home Assistant's Overkiz integration assumes them: energy in Wh, power in
    W, temperature in °C (the local API sends no MeasuredValueType attribute at all)."""
    defaults = [
        (State("core:ElectricEnergyConsumptionState", 5), ("energy_wh", 5.0)),
        (State("core:ElectricPowerConsumptionState", 230), ("power_w", 230.0)),
        (State("core:TemperatureState", 24.1), ("temperature_c", 24.1)),
        (State("core:ConsumptionTariff2State", 12), ("energy_wh", 12.0)),
    ]
    for state, expected in defaults:
        point = reading(device({}), state, NOW, site="s")
        assert point is not None and (point.measurement, point.value) == expected
    odd = device({"core:ElectricEnergyConsumptionStateMeasuredValueType": "core:Furlongs"})
    assert reading(odd, State("core:ElectricEnergyConsumptionState", 5), NOW, site="s") is None


def test_a_per_state_unit_attribute_wins() -> None:
    meter = device({
        "core:MeasuredValueType": "core:ElectricalEnergyInWh",
        "core:ElectricEnergyConsumptionStateMeasuredValueType": "core:ElectricalEnergyInKWh",
        "core:ElectricPowerConsumptionStateMeasuredValueType": "core:ElectricalPowerInKW",
    })
    energy = reading(meter, State("core:ElectricEnergyConsumptionState", 12.5), NOW, site="s")
    power = reading(meter, State("core:ElectricPowerConsumptionState", 1.25), NOW, site="s")
    assert energy is not None and (energy.measurement, energy.value) == ("energy_wh", 12500.0)
    assert power is not None and (power.measurement, power.value) == ("power_w", 1250.0)


def test_device_unit_applies_only_to_its_own_quantity() -> None:
    thermometer = device({"core:MeasuredValueType": "core:TemperatureInCelcius"})
    battery = reading(thermometer, State("core:BatteryLevelState", 87), NOW, site="s")
    assert battery is not None
    assert (battery.measurement, battery.value) == ("battery_pct", 87.0)
    temperature = reading(thermometer, State("core:TemperatureState", 19.5), NOW, site="s")
    assert temperature is not None
    assert (temperature.measurement, temperature.value) == ("temperature_c", 19.5)
    # a meter typed by its energy: its power is in the power state's default unit, W
    meter = device({"core:MeasuredValueType": "core:ElectricalEnergyInWh"})
    power = reading(meter, State("core:ElectricPowerConsumptionState", 230), NOW, site="s")
    assert power is not None and (power.measurement, power.value) == ("power_w", 230.0)


def test_setpoint_kinds_default_to_celsius() -> None:
    point = reading(device({}), State("core:EcoRoomTemperatureState", 3.5), NOW, site="s")
    assert point is not None
    assert (point.measurement, point.value) == ("setpoint_c", 3.5)
    assert ("kind", "eco") in point.tags


def test_uncollected_states_give_nothing_availability_is_the_present_state() -> None:
    assert reading(device({}), State("core:MovingState", True), NOW, site="s") is None
    assert reading(device({}), State("core:NameState", "x"), NOW, site="s") is None
    for text, code, label in (("available", 1.0, "present"), ("unavailable", 0.0, "absent")):
        point = reading(device({}), State("core:StatusState", text), NOW, site="s")
        assert point is not None
        assert (point.measurement, point.value, point.label) == ("state", code, label)
        assert ("name", "present") in point.tags


def test_closure_open_closed_and_heating_level() -> None:
    closure = reading(device({}), State("core:ClosureState", 30), NOW, site="s")
    assert closure is not None
    assert (closure.measurement, closure.value) == ("level_pct", 30.0)
    assert ("kind", "blind") in closure.tags
    opened = reading(device({}), State("core:OpenClosedState", "open"), NOW, site="s")
    assert opened is not None
    assert (opened.measurement, opened.value, opened.label) == ("state", 1.0, "open")
    assert ("name", "open_closed") in opened.tags
    level = reading(device({}), State("io:TargetHeatingLevelState", "eco"), NOW, site="s")
    assert level is not None
    assert (level.value, level.label) == (2.0, "eco")
    assert reading(device({}), State("io:TargetHeatingLevelState", "turbo"), NOW, site="s") is None


def test_event_time_is_used() -> None:
    assert stamp(1631130646544, NOW) == datetime(2021, 9, 8, 19, 50, 46, 544000, tzinfo=UTC)
    assert stamp(None, NOW) == NOW
    assert stamp(10**20, NOW) == NOW


def test_real_setup_readings(shared_dir: Path) -> None:
    doc = json.loads(
        (shared_dir / "fixtures/overkiz/setup/setup_cozytouch_4.json").read_text(encoding="utf-8")
    )
    points = {
        (p.device_id, p.measurement, dict(p.tags).get("kind")): p
        for d in parse_setup(doc).items
        for s in d.states
        if (p := reading(d, s, NOW, site="home")) is not None
    }
    assert points[("io://****-****-6923/11301395#5", "energy_wh", None)].value == 728000.0
    assert points[("io://****-****-6923/11301395#2", "temperature_c", None)].value == 14.0
    assert points[("io://****-****-6923/11301395#1", "setpoint_c", "comfort")].value == 18.5
    assert points[("io://****-****-6923/15021786#2", "co2_ppm", None)].value == 432.0
    # the hot-water tank's temperature has no measured-value type: °C as the community reads it
    assert points[("io://****-****-6923/4683855#1", "temperature_c", None)].value == 49.0
    assert points[("io://****-****-6923/4683855#1", "setpoint_c", "target")].value == 50.0


def test_real_events_need_the_setup_units(shared_dir: Path) -> None:
    doc = json.loads((shared_dir / "fixtures/overkiz/events/events.json").read_text("utf-8"))
    change = parse_events(doc).items[0]
    meter = device({"core:MeasuredValueType": "core:ElectricalEnergyInWh"})
    point = reading(meter, change.states[0], stamp(change.time_ms, NOW), site="home")
    assert point is not None
    assert (point.measurement, point.value) == ("energy_wh", 23247220.0)
    assert point.time == datetime(2021, 9, 8, 19, 50, 46, 544000, tzinfo=UTC)
