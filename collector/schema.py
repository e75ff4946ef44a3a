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
        "AHA energy (Wh); Overkiz ElectricEnergyConsumptionState (Wh or kWh) and, tagged "
        "`tariff` = N, its per-tariff index ConsumptionTariffNState",
        tariff=(),  # optional: absent on the meter total
    ),
    _m(
        "energy_period_wh", "Wh", Kind.PERIOD,
        "Energy consumed in the calendar day or month that starts at the timestamp "
        "(site time zone)",
        "AHA getbasicdevicestats energy series; Overkiz daily/monthly history and growing "
        "index variations of ElectricEnergyConsumptionState",
        period=("day", "month"),
    ),
    _m("voltage_v", "V", Kind.GAUGE, "Mains voltage", "AHA voltage (mV), statistics (0.001 V)"),
    _m("battery_pct", "%", Kind.GAUGE, "Battery charge", "AHA battery; Overkiz BatteryLevelState"),
    _m(
        "level_pct", "%", Kind.GAUGE, "Position or level of an actuator",
        "AHA levelcontrol/blind, HKR valve; Thinknx dimmer/blind and analog level objects "
        "(`kind` = level); Overkiz ClosureState",
        kind=("level", "blind", "valve", "dimmer", "slats"),
    ),
    _m("luminance_lx", "lx", Kind.GAUGE, "Illuminance", "Overkiz LuminanceState; Thinknx analog"),
    _m("co2_ppm", "ppm", Kind.GAUGE, "CO2 concentration", "Overkiz CO2ConcentrationState"),
    _m("uptime_s", "s", Kind.GAUGE, "Uptime", "Thinknx system/serverStatus", kind=()),
    _m("clients", "count", Kind.GAUGE, "Number of connected clients",
       "Thinknx system/serverStatus connected_clients"),
    _m("pbx_users", "count", Kind.GAUGE, "Number of PBX users connected to the server",
       "Thinknx system/serverStatus pbx_users (identifiers separated by commas, counted)"),
    _m("config_time_s", "s", Kind.GAUGE,
       "Time of the running configuration as Unix seconds (the server's local clock, read in "
       "the site's time zone)",
       "Thinknx system/serverStatus config_time"),
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
        "per job run (`device` = `<source>:<name>:<job>`, time = the end of the run to the "
        "millisecond): duration_s, points, errors (the `errors` point of a failed run also "
        "carries its error text, redacted, on one line, at most 200 characters, as the "
        "string field `label`; `collector check` shows it), and dropped = readings of the "
        "run the line-protocol encoder refused (e.g. a time after 2262; the rest of the run "
        "is stored), written only when > 0, so a missing value "
        "means 0; spool (`device` = `spool`): backlog, dead_letters, dropped_total (oldest "
        "lines dropped at `[spool] max_lines`), delivery_failures, and dropped with tag "
        "`reason` = disk_full, write_error or stuck: lines of job runs the spool could not "
        "take (a full disk, another write error, a spool thread that did not answer in "
        "time), written once the spool takes lines again",
        metric=(), reason=("disk_full", "write_error", "stuck"),
    ),
)

BY_NAME: dict[str, Measurement] = {m.name: m for m in TABLE}


@dataclass(frozen=True, slots=True)
class State:
    """One ``name`` of the ``state`` measurement: its codes and their labels."""

    name: str
    codes: tuple[tuple[int, str], ...]
    description: str


_OFF_ON = ((0, "off"), (1, "on"))
_LOCKS = ((0, "unlocked"), (1, "locked"))

STATES: tuple[State, ...] = (
    State("present", ((0, "absent"), (1, "present")),
          "device connected to the box; Overkiz: the device is available (core:StatusState)"),
    State("switch", _OFF_ON, "switch state of a plug or group"),
    State("switch_mode", ((0, "manual"), (1, "auto")), "switching by hand or by schedule"),
    State("on_off", _OFF_ON, "simple on/off unit"),
    State("lock", _LOCKS, "switching locked through the UI/API"),
    State("device_lock", _LOCKS, "switching locked on the device"),
    State("tx_busy", ((0, "idle"), (1, "busy")), "commands still being sent to the device"),
    State("battery_low", ((0, "ok"), (1, "low")), "battery warning"),
    State("window_open", ((0, "closed"), (1, "open")), "thermostat's open-window mode"),
    State("boost", _OFF_ON, "thermostat boost"),
    State("summer_mode", _OFF_ON, "thermostat summer time (heating off)"),
    State("holiday_mode", _OFF_ON, "thermostat holiday time"),
    State("adaptive_heating", _OFF_ON, "adaptive heating enabled"),
    State("adaptive_heating_running", ((0, "idle"), (1, "running")), "pre-heating now"),
    State("thermostat_mode", ((0, "off"), (1, "on"), (2, "setpoint")),
          "HKR 253 = off, 254 = on (valve open), 16..56 = regulating to setpoint_c"),
    State("thermostat_error", ((-1, "unknown error"), (0, "ok"),
                               (1, "no adaptation possible, check mounting"),
                               (2, "valve stroke too short or battery weak"),
                               (3, "no valve movement possible"),
                               (4, "installation being prepared"),
                               (5, "installation mode, ready to mount"),
                               (6, "adapting to the valve stroke")),
          "HKR errorcode (AHA 1.2.1)"),
    State("alert", ((0, "clear"), (1, "alert"), (0, "closed"), (1, "open")),
          "alarm unit; door/window contacts (HAN-FUN, FRITZ!DECT 350) say closed/open"),
    State("button", ((1, "pressed"),), "a button press, timestamped when it happened"),
    State("blind_mode", ((0, "manual"), (1, "auto")), "blind driven by hand or schedule"),
    State("end_positions_set", ((0, "no"), (1, "yes")), "blind end positions calibrated"),
    State("voip_status", ((-1, "unknown"), (0, "disabled"), (1, "not registered"),
                          (2, "registered"), (3, "connected")),
          "TR-064 X_VoIP account status (X_AVM-DE_GetVoIPStatus)"),
    # --- Thinknx (collector/sources/thinknx) ---------------------------------------------------
    State("temp_mode", ((0, "standby"), (1, "comfort"), (2, "economy"), (3, "frost")),
          "Thinknx thermostat modality (tempmodestatus): night/economy, frost/heat protection"),
    State("chrono", ((0, "disabled"), (1, "enabled")),
          "Thinknx thermostat chrono scheduling (chronoenstatus)"),
    State("hvac_mode", ((0, "cooling"), (1, "heating"), (2, "dry"), (3, "fan"), (4, "auto")),
          "Thinknx HVAC modality (hvacmodestatus)"),
    State("fan_speed", ((0, "auto"), (1, "minimum"), (2, "average"), (3, "maximum")),
          "Thinknx HVAC fan speed (hvacfanset / hvacfanstatus)"),
    # --- Overkiz (collector/sources/overkiz) ---------------------------------------------------
    State("open_closed", ((0, "closed"), (1, "open")),
          "Overkiz OpenClosedState of contacts, windows and covers"),
    State("heating_level",
          ((0, "off"), (1, "frostprotection"), (2, "eco"), (3, "comfort-2"), (4, "comfort-1"),
           (5, "comfort"), (6, "boost")),
          "Overkiz heater level (io:TargetHeatingLevelState)"),
)

STATE_BY_NAME: dict[str, State] = {st.name: st for st in STATES}


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
        "`state` points (and the `errors` points of failed job runs) also carry a string",
        "field `label`. Timestamps are UTC: polled values",
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
        "## States",
        "",
        "`state` points carry the tag `name`; `value` is the code and `label` its text.",
        "",
        "| name | codes | meaning |",
        "|---|---|---|",
    ]
    for st in STATES:
        codes = ", ".join(f"{code} = {label}" for code, label in st.codes)
        out.append(f"| `{st.name}` | {codes} | {st.description} |")
    out += [
        "",
        "Unknown or invalid readings (`inval`, empty elements, `-` in statistics, HKR code 255,",
        "Overkiz type-0 states) produce no point: never a zero, never a raw code. HKR codes",
        "253 and 254 are the thermostat states OFF and ON (`state`, name `thermostat_mode`),",
        "never temperatures.",
        "",
        "An HKR `tist` (0.5 °C code) is the `temperature_c` of a thermostat only when its",
        "`celsius` gives no value (missing, empty or `inval`). Codes 16..56 are 8..28 °C as",
        "documented (16 means 8 °C or less, 56 means 28 °C or more); an undocumented code up",
        "to 80 is written as the device sent it (code / 2, 0..40 °C), a higher one gives no",
        "point. A measured temperature is never clamped into the documented range. A setpoint",
        "code outside 16..56 (other than 253/254) is undocumented and gives no point.",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
