"""The three dashboards: Energy, Climate, Devices and health.

Every measurement of the schema table appears on a dashboard: one that no panel below
names gets a panel of its own at the end of Devices and health, in its schema unit, so a
measurement added to the table cannot be forgotten here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.outputs.dashboards import rollup
from collector.outputs.dashboards.grafana import (
    SCHEMA_VERSION,
    Panel,
    Query,
    tag_variable,
    text_variable,
)
from collector.outputs.dashboards.rollup import INTERVAL_NOTE, ROLLUP_NOTE, by_interval, from_rollup
from collector.schema import TABLE, Kind

_NOT_COLLECTOR = "\"source\" != 'collector'"
_DAY = "\"period\" = 'day'"
_MONTH = "\"period\" = 'month'"
_TARGET = "\"kind\" = 'target'"


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    file: str
    description: str
    panels: tuple[Panel, ...]
    time_from: str = "now-7d"
    timezone_variable: bool = False
    #: The ``rollups`` variable: its panels read the hourly rollups (dashboards/rollup.py).
    rollups_variable: bool = False

    def measurements(self) -> set[str]:
        return {q.measurement for p in self.panels for q in p.queries}

    def to_json(self) -> dict[str, Any]:
        panels, x, y, row_h = [], 0, 0, 0
        for i, panel in enumerate(self.panels, start=1):
            if x + panel.width > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(panel.to_json(i, x, y))
            x, row_h = x + panel.width, max(row_h, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["collector"],
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "timezone": "browser",
            "refresh": "1m",
            "time": {"from": self.time_from, "to": "now"},
            "annotations": {"list": []},
            "links": [{"type": "dashboards", "tags": ["collector"], "asDropdown": False,
                       "title": "Collector"}],
            "templating": {"list": _variables(self.timezone_variable,
                                              self.rollups_variable)},
            "panels": panels,
        }


def _variables(with_timezone: bool, with_rollups: bool = False) -> list[dict[str, Any]]:
    out = [
        tag_variable("site", "Site", (_NOT_COLLECTOR,)),
        # "All" is .*: it also matches devices without a room tag
        tag_variable("room", "Room", ('"site" =~ /^$site$/',), all_value=".*"),
        tag_variable("device", "Device",
                     (_NOT_COLLECTOR, '"site" =~ /^$site$/', '"room" =~ /^$room$/')),
    ]
    if with_timezone:
        out += [
            text_variable("timezone", "Time zone", "Europe/Berlin",
                          "IANA time zone of the calendar days and months"),
            text_variable("price_kwh", "Price per kWh", "0.30",
                          "energy price per kWh, in the currency the cost panels show"),
        ]
    if with_rollups:
        out.append(rollup.variable())
    return out


def _states(title: str, names: tuple[str, ...], description: str, width: int = 12,
            rollups: bool = False) -> Panel:
    queries = tuple(Query("state", 'last("value")', state=name, fill="previous",
                          alias=f"$tag_device ({name})") for name in names)
    if rollups:
        return Panel(title, "state-timeline", by_interval(*queries),
                     description + INTERVAL_NOTE, width=width)
    return Panel(title, "state-timeline", queries, description, width=width)


def energy() -> Dashboard:
    power_now = Query("power_w", 'last("value")', interval=None, totals=True)
    daily_meter = Query("energy_wh", 'non_negative_difference(last("value"))', interval="1d",
                        tz=True, totals=True)
    period_day = Query("energy_period_wh", 'sum("value")', where=(_DAY,), interval="1d",
                       group=(), tz=True, totals=True, alias="energy")
    cost_sum = 'sum("value") / 1000 * $price_kwh'
    return Dashboard(
        "collector-energy", "Energy", "energy.json",
        "Power and energy of every metering device (FRITZ! plugs, Overkiz meters, Thinknx "
        "analog objects); FRITZ! groups are left out of sums.",
        (
            Panel("Current power per device", "bargauge", by_interval(power_now),
                  "Newest power reading of each device in the time range." + INTERVAL_NOTE,
                  width=8),
            Panel("Power over time", "timeseries", by_interval(Query("power_w", totals=True)),
                  "Mean power per device and interval." + INTERVAL_NOTE, width=16),
            Panel("Energy per day (meter)", "bars", from_rollup(daily_meter),
                  "Difference of the last meter readings of consecutive calendar days in "
                  "$timezone: a 23- or 25-hour day on a daylight-saving change counts its "
                  "real length." + ROLLUP_NOTE, width=12),
            Panel("Energy per day (device statistics)", "bars", from_rollup(period_day),
                  "Sum of the daily totals the devices report (energy_period_wh, period "
                  "= day), per calendar day in $timezone." + ROLLUP_NOTE, width=12),
            Panel("Energy per month", "bars",
                  from_rollup(Query("energy_period_wh", '"value"', where=(_MONTH,),
                                    interval=None, totals=True)),
                  "Monthly totals the devices report (energy_period_wh, period = month, at "
                  "the start of the month in the site's time zone); the last 12 months."
                  + ROLLUP_NOTE, time_from="1y", width=12),
            Panel("Cost per day", "bars",
                  from_rollup(Query("energy_period_wh", cost_sum, where=(_DAY,), interval="1d",
                                    group=(), tz=True, totals=True, alias="cost")),
                  "Daily energy (device statistics) times $price_kwh." + ROLLUP_NOTE,
                  unit="currencyEUR", decimals=2, width=6),
            Panel("Cost in range", "stat",
                  from_rollup(Query("energy_period_wh", cost_sum, where=(_DAY,), interval=None,
                                    group=(), totals=True, alias="cost")),
                  "Energy of the time range (device statistics) times $price_kwh."
                  + ROLLUP_NOTE, unit="currencyEUR", decimals=2, width=6),
            Panel("Top consumers", "table",
                  from_rollup(Query("energy_period_wh", 'sum("value") AS "energy"',
                                    where=(_DAY,), interval=None, totals=True, table=True)),
                  "Devices by energy used in the time range (device statistics)."
                  + ROLLUP_NOTE, sort_by="energy", limit=10, width=12),
        ),
        time_from="now-30d", timezone_variable=True, rollups_variable=True,
    )


def climate() -> Dashboard:
    by_room = ("room", "device", "source")
    room_alias = "$tag_room · $tag_device ($tag_source)"
    return Dashboard(
        "collector-climate", "Climate", "climate.json",
        "Temperatures, setpoints, humidity and thermostat states of the FRITZ!, Thinknx and "
        "Overkiz devices together, per room.",
        (
            Panel("Temperature and setpoint per room", "timeseries", by_interval(
                Query("temperature_c", group=by_room, alias=room_alias),
                Query("setpoint_c", where=(_TARGET,), group=by_room,
                      alias=f"setpoint {room_alias}"),
            ), "Measured temperature (A, C) and target setpoint (B, D) of every room and "
               "system." + INTERVAL_NOTE,
                width=24, height=10),
            Panel("Humidity", "timeseries",
                  by_interval(Query("humidity_pct", group=by_room, alias=room_alias)),
                  "Relative humidity per room and device." + INTERVAL_NOTE),
            Panel("CO2 concentration", "timeseries",
                  by_interval(Query("co2_ppm", group=by_room, alias=room_alias)),
                  "CO2 concentration per room." + INTERVAL_NOTE),
            _states("Thermostat modes", ("thermostat_mode", "temp_mode", "heating_level"),
                    "FRITZ! HKR off/on/setpoint, Thinknx modality, Overkiz heating level.",
                    rollups=True),
            _states("HVAC", ("hvac_mode", "fan_speed", "on_off"),
                    "Thinknx HVAC modality, fan speed and on/off units.", rollups=True),
            _states("Window open", ("window_open",),
                    "Thermostats' open-window mode.", rollups=True),
            _states("Boost", ("boost",), "Thermostat boost.", rollups=True),
            Panel("Illuminance", "timeseries",
                  by_interval(Query("luminance_lx", group=by_room, alias=room_alias)),
                  "Illuminance per room and device." + INTERVAL_NOTE),
            Panel("Positions and levels", "timeseries",
                  by_interval(Query("level_pct", group=("device", "kind"),
                                    alias="$tag_device ($tag_kind)")),
                  "Blinds, slats, dimmers and radiator valves." + INTERVAL_NOTE),
        ),
        rollups_variable=True,
    )


def _collector(metric: str, select: str, device: str | None = None) -> Query:
    where = (f"\"metric\" = '{metric}'",) + ((f"\"device\" = '{device}'",) if device else ())
    return Query("collector", select, where=where, filters=False,
                  alias=f"$tag_device {metric}" if device is None else metric)


def devices(extra: tuple[Panel, ...] = ()) -> Dashboard:
    return Dashboard(
        "collector-devices", "Devices and health", "devices.json",
        "Batteries, presence, telephony, the Thinknx server and the collector itself.",
        (
            Panel("Battery levels", "bargauge",
                  (Query("battery_pct", 'last("value")', interval=None),),
                  "Newest battery charge of each device.", width=8),
            _states("Presence", ("present",), "Devices connected to their box.", width=16),
            _states("VoIP accounts", ("voip_status",),
                    "Registration of each telephony account (TR-064 X_VoIP).", width=16),
            Panel("VoIP clients", "stat",
                  (Query("voip_clients", 'last("value")', interval=None),),
                  "Configured VoIP clients.", width=8),
            Panel("Thinknx server uptime", "stat",
                  (Query("uptime_s", 'last("value")', interval=None, group=("device", "kind"),
                         alias="$tag_device $tag_kind"),),
                  "Uptime of the Thinknx server and its process.", width=8),
            Panel("Thinknx clients", "stat",
                  (Query("clients", 'last("value")', interval=None),),
                  "Clients connected to the Thinknx server.", width=8),
            Panel("Thinknx configuration time", "stat",
                  (Query("config_time_s", 'last("value") * 1000', interval=None),),
                  "When the running configuration was made (Unix seconds as a date).",
                  unit="dateTimeAsIso", width=8),
            Panel("Mains voltage", "timeseries", (Query("voltage_v"),),
                  "Voltage at each metering plug.", width=12),
            Panel("Collector job durations", "timeseries",
                  (_collector("duration_s", 'max("value")'),),
                  "Longest run per job and interval.", unit="s", width=12),
            Panel("Collector errors and points", "timeseries",
                  (_collector("errors", 'sum("value")'), _collector("points", 'sum("value")')),
                  "Errors and points written per job and interval.", unit="short", width=12),
            Panel("Spool", "timeseries", (
                _collector("backlog", 'last("value")', "spool"),
                _collector("dead_letters", 'last("value")', "spool"),
                _collector("dropped_total", 'last("value")', "spool"),
                _collector("delivery_failures", 'last("value")', "spool"),
            ), "Lines waiting for the store, dead letters (refused lines), lines dropped at "
               "the size bound, failed deliveries.", unit="short", width=12),
            Panel("All states, latest", "table",
                  (Query("state", 'last("value") AS "code", last("label") AS "label"',
                         interval=None, group=("device", "name"), table=True),),
                  "The newest code and label of every state of every device.", width=24,
                  height=10),
            *extra,
        ),
        time_from="now-24h",
    )


def dashboards() -> tuple[Dashboard, ...]:
    """The dashboards, with every schema measurement no panel names on Devices and health."""
    placed = energy().measurements() | climate().measurements() | devices().measurements()
    extra = tuple(
        Panel(f"{m.description} ({m.name})", "timeseries",
              (Query(m.name, 'last("value")' if m.kind is Kind.STATE else 'mean("value")'),),
              f"{m.description}; from {m.sources}.")
        for m in TABLE if m.name not in placed
    )
    return energy(), climate(), devices(extra)
