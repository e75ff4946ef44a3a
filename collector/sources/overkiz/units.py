"""Overkiz measured-value types -> unit texts of the shared normaliser (collector/normalise.py).

The unit of a state, in this order (docs/overkiz.md, "Units"):

1. the state's own attribute, named ``<stateName>MeasuredValueType`` (for example
   ``core:ElectricPowerConsumptionStateMeasuredValueType``: the name real setups use, as
   Home Assistant's Overkiz client lists it);
2. the unit the answer names for the device (a history answer's ``deviceUnit``), then the
   device's ``core:MeasuredValueType`` attribute, each only where it measures the same
   quantity as the state: they describe the device's main measurement, so a thermometer's
   battery level stays in % and a meter's power is not read as Wh;
3. the state's default unit (readings.py), the one the community's clients assume where
   the attribute is missing (the local API sends none at all).

The service spells Celsius "Celcius" in its type names.
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


def state_unit(
    state: str,
    attributes: Mapping[str, str],
    *,
    schema_unit: str,
    answer_unit: str | None = None,
    default: str | None = None,
) -> str | None:
    """The unit of ``state`` (measured in ``schema_unit``) by the rules above; None when no
    rule gives one (or the state's own attribute names a type nobody knows)."""
    own = attributes.get(f"{state}MeasuredValueType")
    if own is not None:
        return unit_text(own)
    for named in (answer_unit, attributes.get("core:MeasuredValueType")):
        if named is None:
            continue
        unit = unit_text(named)
        if unit is not None and UNITS[unit].unit == schema_unit:
            return unit
    return default
