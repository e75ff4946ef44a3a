"""The pieces of the simulated Overkiz house: places, devices, states and metered power.

State data types are those of the spec's device state objects: 1 int, 2 float, 3 string,
6 boolean (overkiz-enduser-rest-api.txt, "GET Device states" and the DeviceStateChangedEvent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOUR_S = 3600
DAY_S = 86400
TICK_S = 60  # live values change on this grid
HISTORY_DAYS = 60  # the server keeps this much state history at 1 h resolution
INT, FLOAT, STRING, BOOL = 1, 2, 3, 6

# units of the core:MeasuredValueType attribute
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
    """Name of a state's own unit attribute: ``<state name>:MeasuredValueType``.

    The spec names no form for it; this is the one the collector reads."""
    return f"{state}:MeasuredValueType"


@dataclass(frozen=True, slots=True)
class Place:
    oid: str
    label: str
    type: int  # 200 house, 1 floor, 5 room (as in the service's place objects)
    children: tuple[Place, ...] = ()

    def json(self) -> dict[str, Any]:
        return {
            "creationTime": 1672531200000,
            "lastUpdateTime": 1672531200000,
            "label": self.label,
            "type": self.type,
            "oid": self.oid,
            "subPlaces": [child.json() for child in self.children],
        }


Value = int | float | str | bool
Fn = Callable[[float], Value]


@dataclass(frozen=True, slots=True)
class State:
    name: str
    type: int
    value: Fn
    historised: bool = False
    growing: bool = False  # a growing index: cumulative energy
    unit: str | None = None  # the per-state core:MeasuredValueType attribute


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

    def state(self, name: str) -> State | None:
        return next((s for s in self.states if s.name == name), None)

    def unit_of(self, state: State) -> str | None:
        return state.unit or self.unit


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
