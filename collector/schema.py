"""The output schema: ONE table of every measurement the collector writes.

docs/schema.md is generated from this table (``python -m collector.schema``) and a test
checks that the committed file matches; the export command and the dashboard checks
read it too.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

#: Tags on every point.
BASE_TAGS: tuple[str, ...] = ("source", "site", "device_id", "device")
#: Tags any point may carry where known.
OPTIONAL_TAGS: tuple[str, ...] = ("room", "model", "scope")
#: Values of the ``source`` tag.
SOURCES: tuple[str, ...] = ("fritzbox", "thinknx", "overkiz", "collector")


class Kind(enum.Enum):
    GAUGE = "gauge"  # a value at an instant
    COUNTER = "counter"  # a cumulative meter reading that only grows (until a reset)
    PERIOD = "period"  # a total over the period that starts at the timestamp
    STATE = "state"  # a code with a readable label


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    unit: str
    kind: Kind
    description: str
    sources: str
    #: Extra tags this measurement carries, with the values they may take (empty: free text).
    tags: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _m(
    name: str,
    unit: str,
    kind_: Kind,
    description: str,
    sources: str,
    /,
    **tags: tuple[str, ...],
) -> Measurement:
    return Measurement(name, unit, kind_, description, sources, tuple(tags.items()))


TABLE: tuple[Measurement, ...] = (
    _m(
        "temperature_c", "°C", Kind.GAUGE, "Measured temperature",
        "AHA `celsius` (0.1 °C, offset already applied by the box) and statistics (0.1 °C); "
        "Thinknx actualtemp; Overkiz TemperatureState",
    ),
    _m(
        "setpoint_c", "°C", Kind.GAUGE, "Thermostat setpoint",
        "AHA HKR tsoll/komfort/absenk/nextchange tchange (0.5 °C codes 16..56); "
        "Thinknx setpointstatus/hvacsetpointstatus; Overkiz Target/ComfortRoom/EcoRoom",
        kind=("target", "comfort", "eco", "next", "boost", "window_open"),
    ),
    _m(
        "humidity_pct", "%", Kind.GAUGE, "Relative humidity",
        "AHA rel_humidity and humidity statistics; Overkiz RelativeHumidityState",
    ),
    _m(
        "power_w", "W", Kind.GAUGE, "Electrical power",
        "AHA power (mW) and statistics (0.01 W); Overkiz ElectricPowerConsumptionState; "
        "Thinknx analog",
    ),
    _m(
        "energy_wh", "Wh", Kind.COUNTER, "Cumulative energy meter reading",
        "AHA energy (Wh); Overkiz ElectricEnergyConsumptionState (Wh or kWh)",
    ),
    _m(
        "energy_period_wh", "Wh", Kind.PERIOD,
        "Energy consumed in the calendar day or month that starts at the timestamp "
        "(site time zone)",
        "AHA getbasicdevicestats energy series",
        period=("day", "month"),
    ),
    _m("voltage_v", "V", Kind.GAUGE, "Mains voltage", "AHA voltage (mV), statistics (0.001 V)"),
    _m("battery_pct", "%", Kind.GAUGE, "Battery charge", "AHA battery; Overkiz BatteryLevelState"),
    _m(
        "level_pct", "%", Kind.GAUGE, "Position or level of an actuator",
        "AHA levelcontrol/blind, HKR valve; Thinknx dimmer/blind; Overkiz ClosureState",
        kind=("level", "blind", "valve", "dimmer", "slats"),
    ),
    _m("luminance_lx", "lx", Kind.GAUGE, "Illuminance", "Overkiz LuminanceState; Thinknx analog"),
    _m("co2_ppm", "ppm", Kind.GAUGE, "CO2 concentration", "Overkiz CO2ConcentrationState"),
    _m("uptime_s", "s", Kind.GAUGE, "Uptime", "Thinknx system/serverStatus", kind=()),
    _m("voip_clients", "count", Kind.GAUGE, "Number of configured VoIP clients",
       "TR-064 X_VoIP GetNumberOfClients"),
    _m(
        "state", "code", Kind.STATE,
        "A state as a numeric code plus a readable `label` field",
        "on/off, present, window open, boost, battery low, locks, thermostat mode, "
        "HVAC mode, fan speed, alert, button, VoIP account status",
        name=(),
    ),
    _m(
        "collector", "", Kind.GAUGE, "Self-monitoring of the collector",
        "per job: duration_s, points, errors; spool: backlog, dead_letters, dropped",
        metric=(),
    ),
)

BY_NAME: dict[str, Measurement] = {m.name: m for m in TABLE}


def unit_of(measurement: str) -> str:
    return BY_NAME[measurement].unit


def render_markdown() -> str:
    """docs/schema.md, generated from TABLE."""
    out = [
        "# Data schema",
        "",
        "Generated from `collector/schema.py` by `python -m collector.schema > docs/schema.md`;",
        "a test fails when this file and the table disagree.",
        "",
        "Every numeric reading is one point. Its field is `value` and is always a float;",
        "`state` points also carry a string field `label`. Timestamps are UTC: polled values",
        "carry the poll time, device statistics and history carry the device's own time.",
        "",
        f"Tags on every point: {', '.join(f'`{t}`' for t in BASE_TAGS)}. "
        f"`source` is one of {', '.join(f'`{s}`' for s in SOURCES)}; `site` is the config "
        "`name`; `device_id` is the stable key (AIN without spaces, GUID or deviceURL); "
        "`device` is the display name.",
        f"Where known: {', '.join(f'`{t}`' for t in OPTIONAL_TAGS)} "
        "(`scope = group` marks readings of a FRITZ! device group, so that a sum over "
        "devices can leave them out and never counts a plug twice).",
        "",
        "| measurement | unit | kind | extra tags | meaning | from |",
        "|---|---|---|---|---|---|",
    ]
    for m in TABLE:
        tags = "; ".join(
            f"`{k}`" + (f" = {' / '.join(vals)}" if vals else "") for k, vals in m.tags
        )
        out.append(
            f"| `{m.name}` | {m.unit or '-'} | {m.kind.value} | {tags or '-'} | "
            f"{m.description} | {m.sources} |"
        )
    out += [
        "",
        "Unknown or invalid readings (`inval`, empty elements, `-` in statistics, HKR code 255,",
        "Overkiz type-0 states) produce no point: never a zero, never a raw code. HKR codes",
        "253 and 254 are the thermostat states OFF and ON (`state`, name `thermostat_mode`),",
        "never temperatures.",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
