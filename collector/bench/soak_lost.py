"""The soak's count of readings lost or wrong: what the simulators served, from their own
models, against what was stored.

Nothing here goes through the collector's parsers or its normaliser. Each expected reading
is worked out from the simulator's model (value, unit, time) with a table of this module,
written from the schema (collector/schema.py, docs/schema.md) and the vendors' documents:

* FRITZ!Box: the house (collector/simulators/fritzbox_house.py) at the time each device list
  was served: power in mW, energy in Wh, voltage in mV, temperatures in 0.1 °C, humidity in
  %, the thermostats' setpoint codes in 0.5 °C (16..56), battery in %.
* Thinknx: the project's value of each status controller at the time it was answered
  (collector/simulators/thinknx_project.py), in the unit of its object: °C, %, and the
  analog objects' own unit (kW, kWh, lx ...).
* Overkiz: the state values the account served, as the simulator's JSON holds them (events
  and state reads, read as plain JSON), each at its own time, in the unit the house's
  device gives the state (``<state>MeasuredValueType``, the device's
  ``core:MeasuredValueType``, else °C, Wh, W).

A reading is looked for in the store by measurement, device_id and the tags that tell it
apart (a setpoint's ``kind``, a group's ``scope``, a tariff index's ``tariff``): either at
its own time (a device's own timestamp), or, when the collector stamps it with its poll, in
the span the poll's time must lie in. The FRITZ!Box and Thinknx jobs stamp a poll before
they ask: after the previous answer to the same question and not after this answer. A
reading with no point there is **lost**; one whose points there all have another value is
**wrong**.

States (codes and labels) are not counted here: only the quantities with a unit.
"""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.simulators.fritzbox_house import Device as FritzDevice
from collector.simulators.fritzbox_house import House as FritzHouse
from collector.simulators.fritzbox_house import Kind as FritzKind
from collector.simulators.overkiz_model import Device as OverkizDevice
from collector.simulators.thinknx_project import Kind as KnxKind
from collector.simulators.thinknx_project import KnxObject

Tags = frozenset[tuple[str, str]]
#: The span a poll's readings are looked for in when no earlier answer bounds it.
_FIRST_SPAN_S = 60.0
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Want:
    """A reading to find: a point of ``measurement`` and ``device_id`` carrying ``tags``,
    with one of ``values``, at a time in [lo, hi) (ns). Several values: answers that gave
    the same instant different values (an Overkiz state read's value at the read, stamped
    with the state's last change, beside the event of that change)."""

    measurement: str
    device_id: str
    tags: Tags
    values: tuple[float, ...]
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Count:
    counted: int
    lost: int
    wrong: int
    #: a few of the readings lost or wrong, with the values stored for them
    examples: tuple[tuple[Want, tuple[float, ...]], ...] = ()


@dataclass(slots=True)
class Expected:
    wants: dict[tuple[str, str, Tags, int, int], Want] = field(default_factory=dict)

    def add(self, measurement: str, device_id: str, value: float, lo_ns: int, hi_ns: int,
            **tags: str) -> None:
        """One reading; the same one expected twice (an event repeated by a state read)
        counts once."""
        key = (measurement, device_id, frozenset(tags.items()), lo_ns, hi_ns)
        held = self.wants.get(key)
        if held is None:
            self.wants[key] = Want(measurement, device_id, key[2], (value,), lo_ns, hi_ns)
        elif not any(_same(value, v) for v in held.values):
            self.wants[key] = Want(measurement, device_id, key[2], (*held.values, value),
                                   lo_ns, hi_ns)

    def at(self, measurement: str, device_id: str, value: float, t_s: float,
           **tags: str) -> None:
        """A reading stamped with a time of its own."""
        t = ns(t_s)
        self.add(measurement, device_id, value, t, t + 1, **tags)

    def polled(self, measurement: str, device_id: str, value: float, after_s: float,
               until_s: float, **tags: str) -> None:
        """A reading stamped with its poll's time, in (after, until]."""
        self.add(measurement, device_id, value, ns(after_s) + 1, ns(until_s) + 1, **tags)


def ns(t_s: float) -> int:
    """A time as the store keeps it (microseconds, in ns)."""
    return round(t_s * 1_000_000) * 1000


#: A stored point: (time ns, tags, value); by (measurement, device_id), sorted by time.
Stored = dict[tuple[str, str], list[tuple[int, Tags, float]]]


def stored_points(store: Path, source: str) -> Stored:
    """The points of ``source`` in the embedded store."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT measurement, time_ns, tags, value FROM points "
                          "WHERE json_extract(tags, '$.source') = ?", (source,)).fetchall()
    finally:
        db.close()
    out: Stored = {}
    for measurement, t, tags_json, value in rows:
        tags: dict[str, str] = json.loads(tags_json)
        out.setdefault((measurement, tags.get("device_id", "")), []).append(
            (int(t), frozenset(tags.items()), float(value)))
    for points in out.values():
        points.sort(key=lambda p: p[0])
    return out


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def count(expected: Expected, stored: Stored, examples: int = 5) -> Count:
    lost = wrong = 0
    shown: list[tuple[Want, tuple[float, ...]]] = []
    for want in expected.wants.values():
        points = stored.get((want.measurement, want.device_id), [])
        times = [t for t, _, _ in points]
        inside = [v for _, tags, v in points[bisect_left(times, want.lo):bisect_left(times,
                                                                                     want.hi)]
                  if want.tags <= tags]
        if any(_same(v, w) for v in inside for w in want.values):
            continue
        if inside:
            wrong += 1
        else:
            lost += 1
        if len(shown) < examples:
            shown.append((want, tuple(inside)))
    return Count(len(expected.wants), lost, wrong, tuple(shown))


def _served_in(times: Sequence[float], start: float, end: float) -> Iterable[tuple[float, float]]:
    """(previous answer or a minute before, this answer) for each answer in [start, end)."""
    ordered = sorted(times)
    for i, t in enumerate(ordered):
        if start <= t < end:
            yield (ordered[i - 1] if i else t - _FIRST_SPAN_S), t


# ---- FRITZ!Box -----------------------------------------------------------------------------

#: AHA units (avm-aha-http-interface.txt): power mW, voltage mV, temperature 0.1 °C, setpoint
#: codes 0.5 °C from 16 (8 °C) to 56 (28 °C); energy Wh and humidity % as they are.
_MILLI, _DECI, _HALF = 1000.0, 10.0, 2.0


def _setpoint(code: int) -> float | None:
    return code / _HALF if 16 <= code <= 56 else None


def fritzbox_expected(house: FritzHouse, served: Sequence[float], start: float,
                      end: float) -> Expected:
    """What each device list the box served in ``[start, end)`` held, from the house."""
    out = Expected()
    for after, t in _served_in(served, start, end):
        for dev in house.devices:
            if dev.present and dev.kind not in (FritzKind.HANFUN, FritzKind.UNIT):
                for measurement, value, tags in _fritz_readings(house, dev, t):
                    if value is not None:
                        out.polled(measurement, dev.ain_compact, value, after, t, **tags)
    return out


def _fritz_readings(house: FritzHouse, dev: FritzDevice, t: float
                    ) -> list[tuple[str, float | None, dict[str, str]]]:
    """(measurement, value or None, tags) of one device in a device list served at ``t``."""
    scope = {"scope": "group"} if dev.kind is FritzKind.GROUP else {}
    out: list[tuple[str, float | None, dict[str, str]]] = []
    if dev.kind in (FritzKind.PLUG, FritzKind.GROUP):
        out += [("power_w", round(house.power_w(dev, t) * _MILLI) / _MILLI, scope),
                ("energy_wh", float(int(house.energy_wh(dev, t))), scope)]
    if dev.kind is FritzKind.PLUG:
        out.append(("voltage_v", house.voltage_mv(dev, t) / _MILLI, {}))
    if dev.kind is not FritzKind.GROUP:
        out.append(("temperature_c", house.celsius_dc(dev, t) / _DECI, {}))
    if dev.kind is FritzKind.CLIMATE:
        out.append(("humidity_pct", float(house.humidity_pct(dev, t)), {}))
    if dev.kind is FritzKind.THERMOSTAT:
        out += [("setpoint_c", _setpoint(house.hkr(dev, t).tsoll), {"kind": "target"}),
                ("setpoint_c", _setpoint(dev.komfort), {"kind": "comfort"}),
                ("setpoint_c", _setpoint(dev.absenk), {"kind": "eco"})]
    if dev.battery is not None:
        out.append(("battery_pct", float(dev.battery), {}))
    return out


# ---- Thinknx -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KnxServed:
    """The project's value of ``controller`` for ``obj``, answered at ``at``."""

    at: float
    obj: KnxObject
    controller: str
    value: float


#: status controller -> (measurement, tags), from the Thinknx integration kit's units
_KNX: dict[str, tuple[str, dict[str, str]]] = {
    "actualtemp": ("temperature_c", {}),  # °C
    "setpointstatus": ("setpoint_c", {"kind": "target"}),  # °C
    "hvacsetpointstatus": ("setpoint_c", {"kind": "target"}),  # °C
    "powerlevelstatus": ("level_pct", {"kind": "dimmer"}),  # %
    "heightlevelstatus": ("level_pct", {"kind": "blind"}),  # %
    "blindanglestatus": ("level_pct", {"kind": "slats"}),  # %
}
#: an analog object's quantity -> measurement, and its unit -> factor to the schema's unit
_ANALOG: dict[str, str] = {
    "power": "power_w", "energy": "energy_wh", "temperature": "temperature_c",
    "humidity": "humidity_pct", "luminance": "luminance_lx", "co2": "co2_ppm",
    "level": "level_pct",
}
_FACTOR: dict[str, float] = {"W": 1.0, "kW": 1000.0, "Wh": 1.0, "kWh": 1000.0, "°C": 1.0,
                             "%": 1.0, "lx": 1.0, "ppm": 1.0}


def _knx_reading(obj: KnxObject, controller: str) -> tuple[str, dict[str, str], float] | None:
    if controller == "getvalue" and obj.kind is KnxKind.ANALOG:
        measurement = _ANALOG.get(obj.quantity or "")
        factor = _FACTOR.get(obj.unit or "")
        if measurement is None or factor is None:
            return None
        return measurement, ({"kind": "level"} if obj.quantity == "level" else {}), factor
    if controller in _KNX:
        measurement, tags = _KNX[controller]
        return measurement, tags, 1.0
    return None


def thinknx_expected(served: Sequence[KnxServed], start: float, end: float) -> Expected:
    """The status values the project answered in ``[start, end)``."""
    out = Expected()
    by_question: dict[tuple[str, str], list[KnxServed]] = {}
    for s in served:
        by_question.setdefault((s.obj.guid, s.controller), []).append(s)
    for answers in by_question.values():
        answers.sort(key=lambda s: s.at)
        for i, s in enumerate(answers):
            if not start <= s.at < end:
                continue
            found = _knx_reading(s.obj, s.controller)
            if found is None:
                continue
            measurement, tags, factor = found
            after = answers[i - 1].at if i else s.at - _FIRST_SPAN_S
            out.polled(measurement, s.obj.guid, s.value * factor, after, s.at, **tags)
    return out


# ---- Overkiz -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OverkizServed:
    """An answer of the account: ``kind`` "events" (an event fetch) or "states" (the states
    of the device ``device_url``), served at ``at``."""

    at: float
    kind: str
    device_url: str
    body: bytes


#: state -> (measurement, tags, default unit): the overkiz-enduser-rest-api state names
_OVERKIZ: dict[str, tuple[str, dict[str, str], str]] = {
    "core:TemperatureState": ("temperature_c", {}, "°C"),
    "core:TargetTemperatureState": ("setpoint_c", {"kind": "target"}, "°C"),
    "core:ComfortRoomTemperatureState": ("setpoint_c", {"kind": "comfort"}, "°C"),
    "core:EcoRoomTemperatureState": ("setpoint_c", {"kind": "eco"}, "°C"),
    "core:RelativeHumidityState": ("humidity_pct", {}, "%"),
    "core:ElectricPowerConsumptionState": ("power_w", {}, "W"),
    "core:ElectricEnergyConsumptionState": ("energy_wh", {}, "Wh"),
    "core:ConsumptionTariff1State": ("energy_wh", {"tariff": "1"}, "Wh"),
    "core:ConsumptionTariff2State": ("energy_wh", {"tariff": "2"}, "Wh"),
    "core:LuminanceState": ("luminance_lx", {}, "lx"),
    "core:CO2ConcentrationState": ("co2_ppm", {}, "ppm"),
    "core:BatteryLevelState": ("battery_pct", {}, "%"),
}
#: the MeasuredValueType attribute values -> factor to the schema's unit
_OVERKIZ_UNIT: dict[str, float] = {
    "core:ElectricalEnergyInWh": 1.0, "core:ElectricalEnergyInKWh": 1000.0,
    "core:ElectricalPowerInW": 1.0, "core:ElectricalPowerInKW": 1000.0,
    "core:TemperatureInCelcius": 1.0, "core:RelativeValueInPercentage": 1.0,
    "core:LuminanceInLux": 1.0,
}


def _overkiz_add(out: Expected, device: OverkizDevice, name: str, raw: Any,
                 t_s: float) -> None:
    known = _OVERKIZ.get(name)
    state = device.state(name)
    if known is None or state is None or isinstance(raw, bool):
        return
    try:
        value = float(raw)  # cloud events carry numbers as text
    except (TypeError, ValueError):
        return
    unit = device.unit_of(state)
    if unit is not None and unit not in _OVERKIZ_UNIT:
        return  # a unit this table does not know: not counted
    measurement, tags, _ = known
    factor = _OVERKIZ_UNIT[unit] if unit is not None else 1.0
    out.at(measurement, device.url, value * factor, t_s, **tags)


def overkiz_expected(served: Sequence[OverkizServed], devices: Mapping[str, OverkizDevice],
                     start: float, end: float) -> Expected:
    """The state values of the event fetches and state reads served in ``[start, end)``,
    each at its own time (an event's timestamp, a state's lastUpdateTime, not after the
    read). A value any answer gave for the same state and time is as good: a state read
    before the counting began may have given the one the store keeps."""
    every, counted = Expected(), Expected()
    for answer in served:
        _overkiz_answer(every, answer, devices)
        if start <= answer.at < end:
            _overkiz_answer(counted, answer, devices)
    return Expected({key: every.wants[key] for key in counted.wants})


def _overkiz_answer(out: Expected, answer: OverkizServed,
                    devices: Mapping[str, OverkizDevice]) -> None:
    try:
        doc = json.loads(answer.body)
    except ValueError:
        return
    if answer.kind == "events":
        for event in doc:
            device = devices.get(event.get("deviceURL", ""))
            if device is None or event.get("name") != "DeviceStateChangedEvent" \
                    or "timestamp" not in event:
                continue
            for s in event.get("deviceStates", []):
                _overkiz_add(out, device, s["name"], s.get("value"), event["timestamp"] / 1000)
    elif answer.kind == "states" and (device := devices.get(answer.device_url)):
        for s in doc:
            if "lastUpdateTime" in s:
                _overkiz_add(out, device, s["name"], s.get("value"),
                             min(s["lastUpdateTime"] / 1000, answer.at))
