"""The pieces of the simulated Overkiz house: places, devices, states and metered power.

State data types are those of the service's device state objects ("GET Device states" and the
DeviceStateChangedEvent of overkiz-enduser-rest-api.txt give the ``type`` field; its codes are
those of the real captures and of pyoverkiz's DataType): 0 none (an event's state without a
value), 1 int, 2 float, 3 string, 4 blob, 5 date (epoch ms, as ``core:DerogationStartDateTimeState``
in a recorded Belgian TaHoma setup), 6 boolean, 9 password, 10 JSON array, 11 JSON object.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

HOUR_S = 3600
DAY_S = 86400
TICK_S = 60  # live values change on this grid
HISTORY_DAYS = 60  # the server keeps this much state history at 1 h resolution
INT, FLOAT, STRING, BLOB, DATE, BOOL, PASSWORD = 1, 2, 3, 4, 5, 6, 9
JSON_ARRAY, JSON_OBJECT = 10, 11
NUMBERS = (INT, FLOAT)
# how far back the time of a state's last change is looked for, tick by tick; a state that
# did not change in that time has the time the device was installed
CHANGE_SEARCH_S = 2 * DAY_S

# units of the MeasuredValueType attributes
WH, KWH, W, KW = (
    "core:ElectricalEnergyInWh",
    "core:ElectricalEnergyInKWh",
    "core:ElectricalPowerInW",
    "core:ElectricalPowerInKW",
)
CELCIUS = "core:TemperatureInCelcius"  # the service's own spelling
PERCENT = "core:RelativeValueInPercentage"
LUX = "core:LuminanceInLux"
UNIT_ATTRIBUTE = "core:MeasuredValueType"
# a meter's index per tariff (the states of the cozytouch capture in shared/fixtures)
TARIFF_1, TARIFF_2 = "core:ConsumptionTariff1State", "core:ConsumptionTariff2State"


def state_unit_attribute(state: str) -> str:
    """Name of a state's own unit attribute: ``<state name>MeasuredValueType``, e.g.
    ``core:ElectricPowerConsumptionStateMeasuredValueType``.

    The spec names no such attribute; this is the form real setups carry (pyoverkiz lists it
    among the attributes of its OverkizAttribute table)."""
    return f"{state}MeasuredValueType"


@dataclass(frozen=True, slots=True)
class Place:
    oid: str
    label: str
    type: int  # 200 house, 1 floor, 5 room (as in the service's place objects)
    children: tuple[Place, ...] = ()

    def json(self, created_ms: int) -> dict[str, Any]:
        # "GET Setup", rootPlace: creationTime, lastUpdateTime, label, type, oid, subPlaces
        return {
            "creationTime": created_ms,
            "lastUpdateTime": created_ms,
            "label": self.label,
            "type": self.type,
            "oid": self.oid,
            "subPlaces": [child.json(created_ms) for child in self.children],
        }


Value = int | float | str | bool | list[Any] | dict[str, Any] | None
Fn = Callable[[float], Value]


@dataclass(frozen=True, slots=True)
class State:
    name: str
    type: int
    value: Fn
    historised: bool = False
    growing: bool = False  # a growing index: cumulative energy
    unit: str | None = None  # the state's own <name>MeasuredValueType attribute
    steady: bool = False  # the value never changes: its last update is the installation
    # the time (epoch s) of the last change at or before a time, where it is known without
    # looking back tick by tick
    changed: Callable[[float], float] | None = None


@dataclass(slots=True)
class Device:
    url: str
    label: str
    controllable: str
    widget: str
    ui_class: str
    place: str
    type: int  # 1 actuator, 2 sensor
    states: list[State] = field(default_factory=list)
    unit: str | None = None  # the device's core:MeasuredValueType attribute
    manufacturer: str = "Somfy"
    power_source: str = "battery"
    available: bool = True
    # a device that stopped reporting: its states keep the values of this time (epoch s)
    silent_since: float | None = None
    raw: dict[str, Any] | None = None  # the recorded device object, served as it is

    def state(self, name: str) -> State | None:
        return next((s for s in self.states if s.name == name), None)

    def unit_of(self, state: State) -> str | None:
        return state.unit or self.unit

    def last_update(self, state: State, now: float, installed: float) -> float:
        """Epoch seconds of the last change of the state's value at or before ``now``."""
        if state.steady:
            return installed
        if state.changed is not None:
            return min(state.changed(now), now)
        if self.silent_since is not None and now >= self.silent_since:
            return self.silent_since
        t = int(now // TICK_S) * TICK_S
        current = state.value(t)
        for _ in range(CHANGE_SEARCH_S // TICK_S):
            if state.value(t - TICK_S) != current:
                return t
            t -= TICK_S
        return installed


class Meter:
    """Hourly power (W) with its exact integral; prefix sums are extended on demand."""

    def __init__(self, origin: float, start_wh: float, power_at_hour: Callable[[int], float]):
        self.origin = int(origin // HOUR_S) * HOUR_S
        self.start_wh = start_wh
        self.power_at_hour = power_at_hour
        self._sums = [0.0]  # Wh from origin to the start of hour i
        self._lock = threading.Lock()

    def power_w(self, t: float) -> float:
        return self.power_at_hour(int(max(t, self.origin) // HOUR_S))

    def energy_wh(self, t: float) -> float:
        t = max(t, float(self.origin))
        index = int((t - self.origin) // HOUR_S)
        with self._lock:
            while len(self._sums) <= index:
                hour = self.origin // HOUR_S + len(self._sums) - 1
                self._sums.append(self._sums[-1] + self.power_at_hour(hour))
            base = self._sums[index]
        start = self.origin + index * HOUR_S
        return self.start_wh + base + self.power_w(t) * (t - start) / HOUR_S

    def index(self, kwh: bool) -> Fn:
        """The meter's reading as a state's value: kWh to the Wh (a float), or whole Wh."""
        if kwh:
            return lambda t: round(self.energy_wh(t) / 1000, 3)
        return lambda t: int(self.energy_wh(t))


class PlaceIds:
    """The oids of a site's places: random-looking, the same for the same seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"places-{seed}")

    def next(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


class Site:
    """What the simulated service answers from: devices by URL, the gateway, the site's time
    zone and the time its devices were installed; history windows in that zone."""

    zone: tzinfo
    timezone: str  # the zone's name, as the setup's location gives it
    installed: float  # epoch s: the last update of a state that never changed
    gateway: str
    setup_oid: str
    devices: list[Device]
    by_url: dict[str, Device]
    root: Place | None = None  # the places; None where the answer has none (local API)
    raw: dict[str, Any] | None = None  # a recorded /setup answer, served as it is

    def history_hours(self, now: float, start_ms: int, end_ms: int) -> list[int]:
        """Full hours (epoch s) inside [start, end] that are at most 60 days old."""
        first = max(start_ms / 1000, now - HISTORY_DAYS * DAY_S)
        last = min(end_ms / 1000, now)
        hour = math.ceil(first / HOUR_S) * HOUR_S
        return list(range(int(hour), int(last) + 1, HOUR_S)) if hour <= last else []

    def periods(
        self, now: float, start_ms: int, end_ms: int, monthly: bool
    ) -> list[tuple[int, int]]:
        """Local days (or months) overlapping [start, end] within the kept history."""
        oldest = now - HISTORY_DAYS * DAY_S
        day = datetime.fromtimestamp(max(start_ms / 1000, oldest), self.zone)
        day = day.replace(hour=0, minute=0, second=0, microsecond=0)
        if monthly:
            day = day.replace(day=1)
        out: list[tuple[int, int]] = []
        end = min(end_ms / 1000, now)
        while day.timestamp() <= end:
            after = _next_month(day) if monthly else (day + timedelta(days=1))
            out.append((int(day.timestamp()), int(after.timestamp())))
            day = after
        return out


def _next_month(day: datetime) -> datetime:
    return day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)
