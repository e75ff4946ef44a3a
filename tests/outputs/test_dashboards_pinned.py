"""Every panel of every dashboard, pinned by value.

Hand-written points go into a real InfluxDB: three sites (a FRITZ!Box, a Thinknx server, an
Overkiz box), a few devices each, a FRITZ! group (``scope = group``), a meter with a
per-tariff index, daily and monthly totals, a week that holds the 25-hour day of
Europe/Berlin (2024-10-27) and the first of a month. Each panel's query, with Grafana's
macros and variables put in (tests/test_dashboards_grafana.py), must answer exactly the
numbers worked out by hand below: a changed aggregate, scale, unit, filter, grouping or time
zone of any panel changes one of them.

The dashboard's range is Berlin's 2024-10-26 00:00 (CEST) to 2024-11-01 23:59:59 (CET):
7 days and 1 hour, so ``$__interval`` is 10m (608.4 s per point, rounded as Grafana does).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.config import Config, InfluxConfig, StoreConfig
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import fill_v1
from tests.influxd import Influxd
from tests.outputs.test_dashboards_grafana import Grafana, load

BOARDS = ("energy.json", "climate.json", "devices.json")
START = datetime(2024, 10, 25, 22, 0, tzinfo=UTC)  # 2024-10-26 00:00 in Berlin (CEST)
END = datetime(2024, 11, 1, 22, 59, 59, tzinfo=UTC)  # 2024-11-01 23:59:59 in Berlin (CET)
#: the last 10-minute bucket a fill(previous) series reaches
LAST_BUCKET = "2024-11-01T22:50:00Z"

# Tag sets of the devices, as line protocol.
FRIDGE = "source=fritzbox,site=home,device_id=116570272633,device=Kühlschrank,room=Küche"
TV = "source=fritzbox,site=home,device_id=116570272641,device=Fernseher,room=Wohnzimmer"
GROUP = "source=fritzbox,site=home,device_id=grp303E4F-3F7D9D5B3,device=Erdgeschoss,scope=group"
HKR = "source=fritzbox,site=home,device_id=099950421775,device=Heizung\\ Wohnzimmer,room=Wohnzimmer"
KLIMA = "source=fritzbox,site=home,device_id=130960007308,device=Bad\\ Klima,room=Bad"
VOIP = "source=fritzbox,site=home,device_id=voip:1,device=+49301234567"
BOX = "source=fritzbox,site=home,device_id=box,device=home"
KNX_TH = "source=thinknx,site=villa,device_id=1IzPszHW,device=Termostato\\ Soggiorno,room=Soggiorno"
KNX_HVAC = "source=thinknx,site=villa,device_id=2KqWx,device=Clima\\ Soggiorno,room=Soggiorno"
KNX_POWER = "source=thinknx,site=villa,device_id=3LmPo,device=Consumo\\ casa,room=Quadro"
KNX_LUX = "source=thinknx,site=villa,device_id=4LuXe,device=Luminosità\\ esterna,room=Esterno"
KNX_BLIND = "source=thinknx,site=villa,device_id=5BlNd,device=Tapparella,room=Soggiorno"
KNX_DIMMER = "source=thinknx,site=villa,device_id=6DiMm,device=Dimmer\\ Camera,room=Camera"
KNX_SERVER = "source=thinknx,site=villa,device_id=server:10.0.0.5,device=villa\\ server"
METER = "source=overkiz,site=tahoma,device_id=io://1234/5678,device=Main\\ meter,room=Garage"
AIR = ("source=overkiz,site=tahoma,device_id=io://1234/9999,device=Living\\ room\\ air,"
       "room=Living\\ room")
HEATER = "source=overkiz,site=tahoma,device_id=io://1234/4444,device=Radiateur,room=Living\\ room"
JOB = "source=collector,site=home,device_id=fritzbox:home:poll,device=fritzbox:home:poll"
SPOOL = "source=collector,site=collector,device_id=spool,device=spool"

#: (measurement, tags, fields, time): every point of the test, written by hand.
POINTS: tuple[tuple[str, str, str, str], ...] = (
    # --- power: 10-minute means; the group and a point before the range stay out
    ("power_w", FRIDGE, "value=999", "2024-10-25T21:00:00Z"),
    ("power_w", FRIDGE, "value=100", "2024-10-26T10:00:00Z"),
    ("power_w", FRIDGE, "value=110", "2024-10-26T10:03:00Z"),
    ("power_w", FRIDGE, "value=390", "2024-10-26T10:07:00Z"),
    ("power_w", FRIDGE, "value=50", "2024-10-26T10:15:00Z"),
    ("power_w", TV, "value=80", "2024-10-27T18:00:00Z"),
    ("power_w", GROUP, "value=180", "2024-10-26T10:00:00Z"),
    ("power_w", GROUP, "value=7", "2024-10-28T10:00:00Z"),
    ("power_w", KNX_POWER, "value=1500", "2024-10-28T09:00:00Z"),
    ("power_w", KNX_POWER, "value=2500", "2024-10-28T09:05:00Z"),
    ("power_w", METER, "value=300", "2024-10-28T09:01:00Z"),
    # --- meters: the last reading of each Berlin day
    ("energy_wh", FRIDGE, "value=1000", "2024-10-25T21:30:00Z"),  # Oct 25 23:30 CEST
    ("energy_wh", FRIDGE, "value=1100", "2024-10-26T05:00:00Z"),
    ("energy_wh", FRIDGE, "value=1500", "2024-10-26T20:00:00Z"),  # Oct 26 22:00 CEST
    ("energy_wh", FRIDGE, "value=1600", "2024-10-26T22:30:00Z"),  # Oct 27 00:30 CEST
    ("energy_wh", FRIDGE, "value=2500", "2024-10-27T22:30:00Z"),  # Oct 27 23:30 CET
    ("energy_wh", FRIDGE, "value=2800", "2024-10-28T12:00:00Z"),
    ("energy_wh", FRIDGE, "value=3400", "2024-11-01T12:00:00Z"),
    ("energy_wh", METER, "value=49000", "2024-10-25T10:00:00Z"),
    ("energy_wh", METER, "value=50000", "2024-10-26T10:00:00Z"),
    ("energy_wh", METER, "value=52000", "2024-10-27T10:00:00Z"),
    ("energy_wh", METER, "value=55000", "2024-10-28T10:00:00Z"),
    ("energy_wh", METER + ",tariff=1", "value=9000", "2024-10-26T21:00:00Z"),
    ("energy_wh", METER + ",tariff=1", "value=9500", "2024-10-27T21:00:00Z"),
    ("energy_wh", METER + ",tariff=1", "value=10000", "2024-10-28T21:00:00Z"),
    ("energy_wh", GROUP, "value=5000", "2024-10-26T20:00:00Z"),
    ("energy_wh", GROUP, "value=6000", "2024-10-27T20:00:00Z"),
    # --- daily totals at Berlin midnight; monthly totals at the first of the month
    ("energy_period_wh", FRIDGE + ",period=day", "value=500", "2024-10-24T22:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=day", "value=620", "2024-10-25T22:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=day", "value=910", "2024-10-26T22:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=day", "value=480", "2024-10-27T23:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=day", "value=1200", "2024-10-31T23:00:00Z"),
    ("energy_period_wh", TV + ",period=day", "value=300", "2024-10-25T22:00:00Z"),
    ("energy_period_wh", TV + ",period=day", "value=250", "2024-10-26T22:00:00Z"),
    ("energy_period_wh", TV + ",period=day", "value=100", "2024-10-31T23:00:00Z"),
    ("energy_period_wh", GROUP + ",period=day", "value=1160", "2024-10-26T22:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=month", "value=14000", "2023-10-31T23:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=month", "value=16000", "2024-08-31T22:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=month", "value=15000", "2024-09-30T22:00:00Z"),
    ("energy_period_wh", FRIDGE + ",period=month", "value=1200", "2024-10-31T23:00:00Z"),
    ("energy_period_wh", TV + ",period=month", "value=9000", "2024-09-30T22:00:00Z"),
    ("energy_period_wh", GROUP + ",period=month", "value=24000", "2024-09-30T22:00:00Z"),
    # --- climate
    ("temperature_c", HKR, "value=30", "2024-10-25T21:00:00Z"),
    ("temperature_c", HKR, "value=20.5", "2024-10-26T08:00:00Z"),
    ("temperature_c", HKR, "value=21", "2024-10-26T08:05:00Z"),
    ("temperature_c", HKR, "value=19", "2024-10-27T08:00:00Z"),
    ("temperature_c", FRIDGE, "value=19.5", "2024-10-26T08:00:00Z"),
    ("temperature_c", KNX_TH, "value=21.5", "2024-10-26T08:02:00Z"),
    ("temperature_c", AIR, "value=22.75", "2024-10-26T08:01:00Z"),
    ("temperature_c", AIR, "value=22.25", "2024-10-26T08:09:00Z"),
    ("setpoint_c", HKR + ",kind=target", "value=21", "2024-10-26T08:00:00Z"),
    ("setpoint_c", HKR + ",kind=target", "value=22", "2024-10-26T08:04:00Z"),
    ("setpoint_c", HKR + ",kind=comfort", "value=22", "2024-10-26T08:00:00Z"),
    ("setpoint_c", KNX_TH + ",kind=target", "value=21", "2024-10-26T08:00:00Z"),
    ("humidity_pct", AIR, "value=55", "2024-10-26T08:00:00Z"),
    ("humidity_pct", AIR, "value=57", "2024-10-26T08:05:00Z"),
    ("humidity_pct", KLIMA, "value=61", "2024-10-27T12:00:00Z"),
    ("co2_ppm", AIR, "value=600", "2024-10-26T08:00:00Z"),
    ("co2_ppm", AIR, "value=800", "2024-10-26T08:05:00Z"),
    ("luminance_lx", KNX_LUX, "value=30000", "2024-10-26T12:00:00Z"),
    ("luminance_lx", KNX_LUX, "value=40000", "2024-10-26T12:05:00Z"),
    ("level_pct", KNX_BLIND + ",kind=blind", "value=100", "2024-10-26T12:00:00Z"),
    ("level_pct", KNX_BLIND + ",kind=blind", "value=0", "2024-10-26T12:05:00Z"),
    ("level_pct", KNX_DIMMER + ",kind=dimmer", "value=40", "2024-10-26T12:00:00Z"),
    ("level_pct", HKR + ",kind=valve", "value=30", "2024-10-26T12:00:00Z"),
    # --- states: two codes in one bucket (the last counts), then a change
    ("state", HKR + ",name=thermostat_mode", 'value=2,label="setpoint"', "2024-10-26T06:00:00Z"),
    ("state", HKR + ",name=thermostat_mode", 'value=1,label="on"', "2024-10-26T06:04:00Z"),
    ("state", HKR + ",name=thermostat_mode", 'value=0,label="off"', "2024-10-27T22:00:00Z"),
    ("state", KNX_TH + ",name=temp_mode", 'value=1,label="comfort"', "2024-10-26T06:00:00Z"),
    ("state", KNX_TH + ",name=temp_mode", 'value=2,label="economy"', "2024-10-26T21:00:00Z"),
    ("state", HEATER + ",name=heating_level", 'value=5,label="comfort"',
     "2024-10-28T05:00:00Z"),
    ("state", KNX_HVAC + ",name=hvac_mode", 'value=1,label="heating"', "2024-10-26T06:00:00Z"),
    ("state", KNX_HVAC + ",name=fan_speed", 'value=3,label="maximum"', "2024-10-26T06:00:00Z"),
    ("state", KNX_HVAC + ",name=fan_speed", 'value=0,label="auto"', "2024-10-26T06:09:00Z"),
    ("state", KNX_HVAC + ",name=on_off", 'value=1,label="on"', "2024-10-30T07:00:00Z"),
    ("state", HKR + ",name=window_open", 'value=1,label="open"', "2024-10-26T08:00:00Z"),
    ("state", HKR + ",name=window_open", 'value=0,label="closed"', "2024-10-26T08:10:00Z"),
    ("state", HKR + ",name=boost", 'value=0,label="off"', "2024-10-31T08:00:00Z"),
    ("state", AIR + ",name=present", 'value=1,label="present"', "2024-10-26T00:00:00Z"),
    ("state", AIR + ",name=present", 'value=0,label="absent"', "2024-10-29T00:00:00Z"),
    ("state", VOIP + ",name=voip_status", 'value=2,label="registered"', "2024-10-26T00:00:00Z"),
    # --- devices and health
    ("battery_pct", HKR, "value=80", "2024-10-26T01:00:00Z"),
    ("battery_pct", HKR, "value=79", "2024-10-28T01:00:00Z"),
    ("battery_pct", AIR, "value=100", "2024-10-27T00:00:00Z"),
    ("voip_clients", BOX, "value=2", "2024-10-26T00:00:00Z"),
    ("voip_clients", BOX, "value=3", "2024-10-30T00:00:00Z"),
    ("uptime_s", KNX_SERVER + ",kind=server", "value=864000", "2024-10-30T00:00:00Z"),
    ("uptime_s", KNX_SERVER + ",kind=server", "value=950400", "2024-10-31T00:00:00Z"),
    ("uptime_s", KNX_SERVER + ",kind=process", "value=3600", "2024-10-31T00:00:00Z"),
    ("clients", KNX_SERVER, "value=4", "2024-10-31T00:00:00Z"),
    ("pbx_users", KNX_SERVER, "value=2", "2024-10-31T00:00:00Z"),
    ("pbx_users", KNX_SERVER, "value=3", "2024-10-31T00:05:00Z"),
    ("config_time_s", KNX_SERVER, "value=1727784000", "2024-10-31T00:00:00Z"),
    ("voltage_v", FRIDGE, "value=229", "2024-10-26T10:00:00Z"),
    ("voltage_v", FRIDGE, "value=231", "2024-10-26T10:05:00Z"),
    ("collector", JOB + ",metric=duration_s", "value=0.5", "2024-10-26T10:00:00Z"),
    ("collector", JOB + ",metric=duration_s", "value=1.5", "2024-10-26T10:01:00Z"),
    ("collector", JOB + ",metric=duration_s", "value=0.7", "2024-10-26T10:02:00Z"),
    ("collector", JOB + ",metric=errors", "value=1", "2024-10-26T10:00:00Z"),
    ("collector", JOB + ",metric=errors", "value=2", "2024-10-26T10:05:00Z"),
    ("collector", JOB + ",metric=points", "value=40", "2024-10-26T10:00:00Z"),
    ("collector", JOB + ",metric=points", "value=60", "2024-10-26T10:05:00Z"),
    ("collector", SPOOL + ",metric=backlog", "value=5", "2024-10-26T10:00:00Z"),
    ("collector", SPOOL + ",metric=backlog", "value=0", "2024-10-26T10:05:00Z"),
    ("collector", JOB + ",metric=backlog", "value=77", "2024-10-26T10:00:00Z"),
    ("collector", SPOOL + ",metric=dead_letters", "value=1", "2024-10-26T10:00:00Z"),
    ("collector", SPOOL + ",metric=dropped_total", "value=0", "2024-10-26T10:00:00Z"),
    ("collector", SPOOL + ",metric=delivery_failures", "value=2", "2024-10-26T10:00:00Z"),
    ("collector", SPOOL + ",metric=delivery_failures", "value=3", "2024-10-26T10:05:00Z"),
)

Rows = dict[str, list[tuple[str, Any]]]
#: (board, panel title) -> (Grafana unit, {refId: {series: [(UTC time, value), ...]}}).
#: A series is named by its GROUP BY tags joined with " | " ("" without any); a state
#: timeline (fill(previous)) by the buckets where its value changes and its last bucket.
EXPECTED: dict[tuple[str, str], tuple[str, dict[str, Rows]]] = {
    ("energy.json", "Current power per device"): ("watt", {"A": {
        "Kühlschrank": [("2024-10-26T10:15:00Z", 50.0)],
        "Fernseher": [("2024-10-27T18:00:00Z", 80.0)],
        "Consumo casa": [("2024-10-28T09:05:00Z", 2500.0)],
        "Main meter": [("2024-10-28T09:01:00Z", 300.0)],
    }}),
    ("energy.json", "Power over time"): ("watt", {"A": {
        "Kühlschrank": [("2024-10-26T10:00:00Z", 200.0), ("2024-10-26T10:10:00Z", 50.0)],
        "Fernseher": [("2024-10-27T18:00:00Z", 80.0)],
        "Consumo casa": [("2024-10-28T09:00:00Z", 2000.0)],
        "Main meter": [("2024-10-28T09:00:00Z", 300.0)],
    }}),
    # Berlin days start at 22:00 UTC in summer time, at 23:00 UTC from 2024-10-27 on.
    # The first day's difference is to the last reading of the day before the range.
    ("energy.json", "Energy per day (meter)"): ("watth", {"A": {
        "Kühlschrank": [("2024-10-25T22:00:00Z", 500.0), ("2024-10-26T22:00:00Z", 1000.0),
                        ("2024-10-27T23:00:00Z", 300.0), ("2024-10-31T23:00:00Z", 600.0)],
        "Main meter": [("2024-10-25T22:00:00Z", 1000.0), ("2024-10-26T22:00:00Z", 2000.0),
                       ("2024-10-27T23:00:00Z", 3000.0)],
    }}),
    ("energy.json", "Energy per day (device statistics)"): ("watth", {"A": {
        "": [("2024-10-25T22:00:00Z", 920.0), ("2024-10-26T22:00:00Z", 1160.0),
             ("2024-10-27T23:00:00Z", 480.0), ("2024-10-31T23:00:00Z", 1300.0)],
    }}),
    # the last year of the range: the month of 2023-11-01 is just outside it
    ("energy.json", "Energy per month"): ("watth", {"A": {
        "Kühlschrank": [("2024-08-31T22:00:00Z", 16000.0), ("2024-09-30T22:00:00Z", 15000.0),
                        ("2024-10-31T23:00:00Z", 1200.0)],
        "Fernseher": [("2024-09-30T22:00:00Z", 9000.0)],
    }}),
    # 0.30 per kWh
    ("energy.json", "Cost per day"): ("currencyEUR", {"A": {
        "": [("2024-10-25T22:00:00Z", 0.276), ("2024-10-26T22:00:00Z", 0.348),
             ("2024-10-27T23:00:00Z", 0.144), ("2024-10-31T23:00:00Z", 0.39)],
    }}),
    # 920 + 1160 + 480 + 1300 = 3860 Wh; a query without GROUP BY time is stamped at the start
    ("energy.json", "Cost in range"): ("currencyEUR", {"A": {
        "": [("2024-10-25T22:00:00Z", 1.158)],
    }}),
    ("energy.json", "Top consumers"): ("watth", {"A": {
        "Kühlschrank": [("2024-10-25T22:00:00Z", 3210.0)],
        "Fernseher": [("2024-10-25T22:00:00Z", 650.0)],
    }}),
    ("climate.json", "Temperature and setpoint per room"): ("celsius", {
        "A": {
            "Wohnzimmer | Heizung Wohnzimmer | fritzbox": [
                ("2024-10-26T08:00:00Z", 20.75), ("2024-10-27T08:00:00Z", 19.0)],
            "Küche | Kühlschrank | fritzbox": [("2024-10-26T08:00:00Z", 19.5)],
            "Soggiorno | Termostato Soggiorno | thinknx": [("2024-10-26T08:00:00Z", 21.5)],
            "Living room | Living room air | overkiz": [("2024-10-26T08:00:00Z", 22.5)],
        },
        "B": {
            "Wohnzimmer | Heizung Wohnzimmer | fritzbox": [("2024-10-26T08:00:00Z", 21.5)],
            "Soggiorno | Termostato Soggiorno | thinknx": [("2024-10-26T08:00:00Z", 21.0)],
        },
    }),
    ("climate.json", "Humidity"): ("percent", {"A": {
        "Living room | Living room air | overkiz": [("2024-10-26T08:00:00Z", 56.0)],
        "Bad | Bad Klima | fritzbox": [("2024-10-27T12:00:00Z", 61.0)],
    }}),
    ("climate.json", "CO2 concentration"): ("ppm", {"A": {
        "Living room | Living room air | overkiz": [("2024-10-26T08:00:00Z", 700.0)],
    }}),
    ("climate.json", "Thermostat modes"): ("none", {
        "A": {"Heizung Wohnzimmer": [("2024-10-26T06:00:00Z", 1.0),
                                     ("2024-10-27T22:00:00Z", 0.0), (LAST_BUCKET, 0.0)]},
        "B": {"Termostato Soggiorno": [("2024-10-26T06:00:00Z", 1.0),
                                       ("2024-10-26T21:00:00Z", 2.0), (LAST_BUCKET, 2.0)]},
        "C": {"Radiateur": [("2024-10-28T05:00:00Z", 5.0), (LAST_BUCKET, 5.0)]},
    }),
    ("climate.json", "HVAC"): ("none", {
        "A": {"Clima Soggiorno": [("2024-10-26T06:00:00Z", 1.0), (LAST_BUCKET, 1.0)]},
        "B": {"Clima Soggiorno": [("2024-10-26T06:00:00Z", 0.0), (LAST_BUCKET, 0.0)]},
        "C": {"Clima Soggiorno": [("2024-10-30T07:00:00Z", 1.0), (LAST_BUCKET, 1.0)]},
    }),
    ("climate.json", "Window open"): ("none", {"A": {
        "Heizung Wohnzimmer": [("2024-10-26T08:00:00Z", 1.0), ("2024-10-26T08:10:00Z", 0.0),
                               (LAST_BUCKET, 0.0)],
    }}),
    ("climate.json", "Boost"): ("none", {"A": {
        "Heizung Wohnzimmer": [("2024-10-31T08:00:00Z", 0.0), (LAST_BUCKET, 0.0)],
    }}),
    ("climate.json", "Illuminance"): ("lux", {"A": {
        "Esterno | Luminosità esterna | thinknx": [("2024-10-26T12:00:00Z", 35000.0)],
    }}),
    ("climate.json", "Positions and levels"): ("percent", {"A": {
        "Tapparella | blind": [("2024-10-26T12:00:00Z", 50.0)],
        "Dimmer Camera | dimmer": [("2024-10-26T12:00:00Z", 40.0)],
        "Heizung Wohnzimmer | valve": [("2024-10-26T12:00:00Z", 30.0)],
    }}),
    ("devices.json", "Battery levels"): ("percent", {"A": {
        "Heizung Wohnzimmer": [("2024-10-28T01:00:00Z", 79.0)],
        "Living room air": [("2024-10-27T00:00:00Z", 100.0)],
    }}),
    ("devices.json", "Presence"): ("none", {"A": {
        "Living room air": [("2024-10-26T00:00:00Z", 1.0), ("2024-10-29T00:00:00Z", 0.0),
                            (LAST_BUCKET, 0.0)],
    }}),
    ("devices.json", "VoIP accounts"): ("none", {"A": {
        "+49301234567": [("2024-10-26T00:00:00Z", 2.0), (LAST_BUCKET, 2.0)],
    }}),
    ("devices.json", "VoIP clients"): ("short", {"A": {
        "home": [("2024-10-30T00:00:00Z", 3.0)],
    }}),
    ("devices.json", "Thinknx server uptime"): ("s", {"A": {
        "villa server | server": [("2024-10-31T00:00:00Z", 950400.0)],
        "villa server | process": [("2024-10-31T00:00:00Z", 3600.0)],
    }}),
    ("devices.json", "Thinknx clients"): ("short", {"A": {
        "villa server": [("2024-10-31T00:00:00Z", 4.0)],
    }}),
    # Unix seconds as the milliseconds Grafana's date unit takes
    ("devices.json", "Thinknx configuration time"): ("dateTimeAsIso", {"A": {
        "villa server": [("2024-10-31T00:00:00Z", 1727784000000.0)],
    }}),
    ("devices.json", "Mains voltage"): ("volt", {"A": {
        "Kühlschrank": [("2024-10-26T10:00:00Z", 230.0)],
    }}),
    ("devices.json", "Collector job durations"): ("s", {"A": {
        "fritzbox:home:poll": [("2024-10-26T10:00:00Z", 1.5)],
    }}),
    ("devices.json", "Collector errors and points"): ("short", {
        "A": {"fritzbox:home:poll": [("2024-10-26T10:00:00Z", 3.0)]},
        "B": {"fritzbox:home:poll": [("2024-10-26T10:00:00Z", 100.0)]},
    }),
    ("devices.json", "Spool"): ("short", {
        "A": {"spool": [("2024-10-26T10:00:00Z", 0.0)]},
        "B": {"spool": [("2024-10-26T10:00:00Z", 1.0)]},
        "C": {"spool": [("2024-10-26T10:00:00Z", 0.0)]},
        "D": {"spool": [("2024-10-26T10:00:00Z", 3.0)]},
    }),
    # a measurement no panel names gets a panel of its own: 10-minute means
    ("devices.json", "Number of PBX users connected to the server (pbx_users)"): ("short", {
        "A": {"villa server": [("2024-10-31T00:00:00Z", 2.5)]},
    }),
    # (code, label) of the newest point of each state of each device
    ("devices.json", "All states, latest"): ("none", {"A": {
        "Heizung Wohnzimmer | thermostat_mode": [("2024-10-25T22:00:00Z", (0.0, "off"))],
        "Heizung Wohnzimmer | window_open": [("2024-10-25T22:00:00Z", (0.0, "closed"))],
        "Heizung Wohnzimmer | boost": [("2024-10-25T22:00:00Z", (0.0, "off"))],
        "Termostato Soggiorno | temp_mode": [("2024-10-25T22:00:00Z", (2.0, "economy"))],
        "Radiateur | heating_level": [("2024-10-25T22:00:00Z", (5.0, "comfort"))],
        "Clima Soggiorno | hvac_mode": [("2024-10-25T22:00:00Z", (1.0, "heating"))],
        "Clima Soggiorno | fan_speed": [("2024-10-25T22:00:00Z", (0.0, "auto"))],
        "Clima Soggiorno | on_off": [("2024-10-25T22:00:00Z", (1.0, "on"))],
        "Living room air | present": [("2024-10-25T22:00:00Z", (0.0, "absent"))],
        "+49301234567 | voip_status": [("2024-10-25T22:00:00Z", (2.0, "registered"))],
    }}),
}

#: Queries that answer nothing over this week (collector/outputs/dashboards/rollup.py): those on the
#: hourly rollups of panels grouped by $__interval (10 minutes here; the rollups answer from
#: 1 hour on), and those on raw readings of the daily and monthly panels, which read the
#: rollups while the variable rollups is on.
SILENT: dict[tuple[str, str], tuple[str, ...]] = {
    **{("energy.json", title): ("B",) for title in (
        "Current power per device", "Power over time", "Energy per day (meter)",
        "Energy per day (device statistics)", "Energy per month", "Cost per day",
        "Cost in range", "Top consumers")},
    **{("climate.json", title): ("B",) for title in (
        "Humidity", "CO2 concentration", "Window open", "Boost", "Illuminance",
        "Positions and levels")},
    ("climate.json", "Temperature and setpoint per room"): ("C", "D"),
    ("climate.json", "Thermostat modes"): ("D", "E", "F"),
    ("climate.json", "HVAC"): ("D", "E", "F"),
}
for _key, _refs in SILENT.items():
    EXPECTED[_key][1].update({ref: {} for ref in _refs})


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 10**9


def _iso(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def pinned_db(influxd: Influxd) -> Iterator[str]:
    db = "pinned"
    influxd.create_db(db)
    body = "\n".join(f"{m},{tags} {fields} {_ns(t)}" for m, tags, fields, t in POINTS)
    assert influxd.write(db, body).status_code == 204
    # the hourly rollups, as the continuous queries of `collector store setup` compute them
    config = Config(store=StoreConfig(kind="influxdb"),
                    influxdb=InfluxConfig(url=influxd.url, api="v1", database=db))
    setup_store(config)
    assert config.influxdb is not None
    fill_v1(config.influxdb, _ns("2023-01-01T00:00:00Z"), _ns("2025-01-01T00:00:00Z"))
    yield db


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name in BOARDS for panel in load(name)["panels"]]


def shown(answer: dict[str, Any], group: list[str], timeline: bool) -> dict[str, Rows]:
    """A query's answer as the test writes it: series by their group tags, rows of (time,
    value or the tuple of values); a state timeline as its changes and its last bucket."""
    (stmt,) = answer["results"]
    assert "error" not in stmt, stmt
    out: dict[str, Rows] = {}
    for s in stmt.get("series", []):
        name = " | ".join(s.get("tags", {}).get(tag, "") for tag in group)
        rows = [(_iso(row[0]), row[1] if len(row) == 2 else tuple(row[1:]))
                for row in s["values"] if any(cell is not None for cell in row[1:])]
        if timeline and rows:
            changes = [r for i, r in enumerate(rows) if i == 0 or r[1] != rows[i - 1][1]]
            rows = [*changes, rows[-1]]
        out[name] = rows
    return out


def _group_tags(query: str) -> list[str]:
    if " GROUP BY " not in query:
        return []
    part = query.split(" GROUP BY ", 1)[1]
    for end in (" fill(", " tz("):
        part = part.split(end, 1)[0]
    return [p.strip().strip('"') for p in part.split(",") if not p.strip().startswith("time(")]


def _grafana(influxd: Influxd, db: str, board: str) -> tuple[Grafana, list[dict[str, Any]]]:
    variables = load(board)["templating"]["list"]
    grafana = Grafana(start=START, end=END,
                      text={"timezone": "Europe/Berlin", "price_kwh": "0.30"})
    grafana.resolve(influxd, db, variables)
    return grafana, variables


def test_every_panel_of_every_dashboard_is_pinned() -> None:
    assert {(b, p["title"]) for b, p in _panels()} == set(EXPECTED)


@pytest.mark.parametrize(("board", "panel"), _panels(),
                         ids=[f"{b}:{p['title']}" for b, p in _panels()])
def test_the_panel_shows_the_numbers_worked_out_by_hand(
    influxd: Influxd, pinned_db: str, board: str, panel: dict[str, Any]
) -> None:
    unit, by_ref = EXPECTED[(board, panel["title"])]
    assert panel["fieldConfig"]["defaults"]["unit"] == unit
    assert [t["refId"] for t in panel["targets"]] == list(by_ref)
    grafana, variables = _grafana(influxd, pinned_db, board)
    for target in panel["targets"]:
        query = grafana.interpolate(target["query"], variables, panel)
        got = shown(influxd.query(query, pinned_db), _group_tags(query),
                    "fill(previous)" in query)
        assert _rounded(got) == _rounded(by_ref[target["refId"]]), (
            panel["title"], target["refId"], query)


def _rounded(rows: dict[str, Rows]) -> dict[str, Rows]:
    """Numbers to 9 decimals (0.3 * 3.86 is 1.1579999...)."""
    def one(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(one(x) for x in v)
        return round(float(v), 9) if isinstance(v, int | float) else v
    return {name: [(t, one(v)) for t, v in series] for name, series in rows.items()}


@pytest.mark.parametrize("variable", ["site", "room", "device"])
@pytest.mark.parametrize("board", BOARDS)
def test_a_selection_that_matches_nothing_empties_every_device_panel(
    influxd: Influxd, pinned_db: str, board: str, variable: str
) -> None:
    """Every query that takes the site, room and device variables is narrowed by each of
    them; the collector's own panels take none."""
    grafana, variables = _grafana(influxd, pinned_db, board)
    grafana.selected[variable] = ["no such " + variable]
    for panel in load(board)["panels"]:
        for target in panel["targets"]:
            query = grafana.interpolate(target["query"], variables, panel)
            got = shown(influxd.query(query, pinned_db), _group_tags(query), False)
            own = "$site" not in target["query"]
            assert bool(got) is own, (panel["title"], target["refId"], query)
