"""Overkiz measured-value types -> unit texts of the shared normaliser (collector/normalise.py).

A state's unit comes from the ``core:MeasuredValueType`` attribute: the one given for the state
itself first, then the device's. The device's attribute describes its main measurement only
(a thermometer's is a temperature), so it applies to a state only when it measures the same
quantity: a thermometer's battery level stays in %. The service spells Celsius "Celcius" in
its type names.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.normalise import UNITS, warn_once

VENDOR = "Overkiz"

MEASURED_VALUE_TYPES: Mapping[str, str] = {
    "core:TemperatureInCelcius": "°C",
    "core:TemperatureInCelsius": "°C",
    "core:TemperatureInKelvin": "K",
    "core:TemperatureInFahrenheit": "°F",
    "core:ElectricalEnergyInWh": "Wh",
    "core:ElectricalEnergyInKWh": "kWh",
    "core:ElectricalEnergyInMWh": "MWh",
    "core:ElectricalPowerInW": "W",
    "core:ElectricalPowerInKW": "kW",
    "core:ElectricalPowerInMW": "MW",
    "core:LuminanceInLux": "lx",
    "core:RelativeValueInPercentage": "%",
    "core:PartsPerMillion": "ppm",
}


def unit_text(measured_value_type: str) -> str | None:
    """The normaliser's unit text; an unknown type is logged once and gives None."""
    unit = MEASURED_VALUE_TYPES.get(measured_value_type)
    if unit is None:
        warn_once(VENDOR, "measured value type", measured_value_type)
    return unit


def state_unit(state: str, attributes: Mapping[str, str], *, schema_unit: str) -> str | None:
    """The unit of ``state`` (measured in ``schema_unit``): a per-state
    ``<state>:MeasuredValueType`` attribute wins over the device's ``core:MeasuredValueType``,
    which counts only when it is a unit of ``schema_unit``; None when neither applies."""
    own = attributes.get(f"{state}:MeasuredValueType")
    if own is not None:
        return unit_text(own)
    device = attributes.get("core:MeasuredValueType")
    if device is None:
        return None
    unit = unit_text(device)
    if unit is None or UNITS[unit].unit != schema_unit:
        return None
    return unit
