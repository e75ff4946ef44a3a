"""Overkiz states -> schema readings (collector/schema.py).

A state's unit comes from its ``MeasuredValueType`` attributes where the setup names one
(units.py), else from the state's default below: the unit Home Assistant's Overkiz
integration assumes for it (temperatures in °C, energy in Wh, power in W, CO2 in ppm,
percentages), which is how real setups without the attribute (the local API never sends it)
report. Devices without states (RTS) give nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from collector.model import Reading
from collector.normalise import convert_or_none, warn_once
from collector.schema import STATE_BY_NAME
from collector.sources.overkiz.parse import Device, State
from collector.sources.overkiz.units import VENDOR, state_unit


@dataclass(frozen=True, slots=True)
class StateRule:
    measurement: str
    unit: str  # schema unit
    default_unit: str  # the unit when no MeasuredValueType attribute names one
    kind: str | None = None
    tariff: str | None = None  # the ``tariff`` tag of a meter's per-tariff index


RULES: dict[str, StateRule] = {
    "core:TemperatureState": StateRule("temperature_c", "°C", "°C"),
    # the room temperature of Hitachi air-to-air heat pumps, their only measured temperature
    "hlrrwifi:RoomTemperatureState": StateRule("temperature_c", "°C", "°C"),
    "ovp:RoomTemperatureState": StateRule("temperature_c", "°C", "°C"),
    "core:TargetTemperatureState": StateRule("setpoint_c", "°C", "°C", "target"),
    "core:ComfortRoomTemperatureState": StateRule("setpoint_c", "°C", "°C", "comfort"),
    "core:EcoRoomTemperatureState": StateRule("setpoint_c", "°C", "°C", "eco"),
    "core:RelativeHumidityState": StateRule("humidity_pct", "%", "%"),
    "core:ElectricPowerConsumptionState": StateRule("power_w", "W", "W"),
    "core:ElectricEnergyConsumptionState": StateRule("energy_wh", "Wh", "Wh"),
    "core:LuminanceState": StateRule("luminance_lx", "lx", "lx"),
    "core:CO2ConcentrationState": StateRule("co2_ppm", "ppm", "ppm"),
    "core:BatteryLevelState": StateRule("battery_pct", "%", "%"),
    "core:ClosureState": StateRule("level_pct", "%", "%", "blind"),
    # A meter's index per tariff (core:ConsumptionTariff0State .. 9, as in the cozytouch
    # setup capture): energy_wh tagged tariff = N, beside the untagged total.
    **{
        f"core:ConsumptionTariff{n}State": StateRule("energy_wh", "Wh", "Wh", tariff=str(n))
        for n in range(10)
    },
}

#: The device's own availability ("available" / "unavailable"), as the ``present`` state.
STATUS_STATE = "core:StatusState"

#: The cumulative meter total whose increase per day and month is ``energy_period_wh``.
METER_TOTAL = "core:ElectricEnergyConsumptionState"

#: Text states -> (name of the ``state`` measurement in collector/schema.py STATES).
TEXT_STATES: dict[str, str] = {
    "core:OpenClosedState": "open_closed",
    "io:TargetHeatingLevelState": "heating_level",
    "core:StatusState": "present",
}

#: Texts of a state whose labels in the schema differ from the device's words.
_LABELS: dict[str, dict[str, str]] = {
    # core:StatusState (fixtures/overkiz/events/device-states.json): the device is reachable
    "present": {"available": "present", "unavailable": "absent"},
}


def reading(
    device: Device,
    state: State,
    time: datetime,
    *,
    site: str,
    answer_unit: str | None = None,
) -> Reading | None:
    """The reading of one state of ``device`` at ``time``, or None when it is not collected.

    ``answer_unit`` is a unit the answer itself names for the device (a history's
    ``deviceUnit``): it counts as the device's unit does (units.py)."""
    if state.name in TEXT_STATES:
        return _state_reading(device, state, time, site=site)
    rule = RULES.get(state.name)
    if rule is None or isinstance(state.value, (bool, str, list, dict)):
        return None
    unit = state_unit(state.name, device.attributes, schema_unit=rule.unit,
                      answer_unit=answer_unit, default=rule.default_unit)
    if unit is None:
        return None
    value = convert_or_none(float(state.value), unit, to=rule.unit, vendor=VENDOR)
    if value is None:
        return None
    extra = {"kind": rule.kind, "tariff": rule.tariff}
    tags = _tags(device, **{k: v for k, v in extra.items() if v is not None})
    return Reading(rule.measurement, value, time, "overkiz", site, device.url, device.label, tags)


def period_reading(
    device: Device, period: str, start: datetime, amount: float, unit: str | None, *, site: str
) -> Reading | None:
    """What ``device``'s meter counted in the day or month starting at ``start``, in Wh; None
    without a known unit or for a decrease (a replaced or reset meter: no period total)."""
    if unit is None:
        return None
    value = convert_or_none(amount, unit, to="Wh", vendor=VENDOR)
    if value is None or value < 0:
        return None
    tags = _tags(device, period=period)
    return Reading("energy_period_wh", value, start, "overkiz", site, device.url, device.label,
                   tags)


def _tags(device: Device, **extra: str) -> tuple[tuple[str, str], ...]:
    tags = dict(extra)
    if device.model:
        tags["model"] = device.model
    if device.room:
        tags["room"] = device.room
    return tuple(sorted(tags.items()))


def _state_reading(device: Device, state: State, time: datetime, *, site: str) -> Reading | None:
    name = TEXT_STATES[state.name]
    if not isinstance(state.value, str):
        return None
    codes = {label: code for code, label in STATE_BY_NAME[name].codes}
    label = _LABELS.get(name, {}).get(state.value, state.value)
    code = codes.get(label)
    if code is None:
        warn_once(VENDOR, state.name, state.value)
        return None
    return Reading(
        "state", float(code), time, "overkiz", site, device.url, device.label,
        _tags(device, name=name), label,
    )


def availability(device: Device, available: bool, time: datetime, *, site: str) -> Reading:
    """Whether ``device`` is available, as the ``present`` state (collector/schema.py)."""
    label = "present" if available else "absent"
    return Reading("state", 1.0 if available else 0.0, time, "overkiz", site, device.url,
                   device.label, _tags(device, name="present"), label)


def stamp(time_ms: int | None, fallback: datetime) -> datetime:
    """An event's own time (epoch milliseconds) or ``fallback`` when it has none."""
    if time_ms is None:
        return fallback
    try:
        return datetime.fromtimestamp(time_ms / 1000.0, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return fallback
