"""The simulated house behind the FRITZ!Box: devices and their readings as functions of time.

Every reading is a pure function of (seed, device, time), so a fake clock gives repeatable
answers. Plugs draw power that is constant within each 10 s slot (the grid of the power
statistics); the energy counter is the exact integral of that power since the plug was put
into service, computed in closed form per day so that years of history cost nothing.
Temperatures and humidity are constant within each 900 s slot (the grid of their statistics),
so the newest statistics value always equals the live reading.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

MASK64 = (1 << 64) - 1
SLOT_S = 10  # power and voltage statistics grid
CLIMATE_SLOT_S = 900  # temperature and humidity statistics grid
HOUR_S = 3600
DAY_S = 86400
INSTALLED = 1672531200  # 2023-01-01T00:00:00Z: the first device of the default house


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def unit_noise(*parts: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for the given integers."""
    x = 0x243F6A8885A308D3
    for part in parts:
        x = _splitmix(x ^ (part & MASK64))
    return (x >> 11) / float(1 << 53)


class Kind(StrEnum):
    PLUG = "plug"
    GROUP = "group"
    THERMOSTAT = "thermostat"
    CLIMATE = "climate"  # FRITZ!DECT 440: temperature, humidity, buttons
    REPEATER = "repeater"
    HANFUN = "hanfun"  # a HAN-FUN device; its sensor is a separate UNIT entry
    UNIT = "unit"


@dataclass(frozen=True, slots=True)
class Load:
    """The appliance behind a plug: standby power plus a daily usage profile."""

    base_w: float
    active_w: float
    profile: tuple[float, ...]  # 24 weights, by local hour
    day_prob: float = 1.0  # share of days the appliance runs at all
    day_lo: float = 1.0
    day_hi: float = 1.0


@dataclass(frozen=True, slots=True)
class Device:
    kind: Kind
    ain: str
    id: int
    name: str
    product: str
    key: int
    commissioned: int
    manufacturer: str = "AVM"
    fw: str = "04.27"
    present: bool = True
    room_c: float = 20.0
    offset_dc: int = 0  # temperature offset in 0.1 °C, already included in <celsius>
    load: Load | None = None
    battery: int | None = None
    hkr_mode: str = "schedule"  # schedule | off | mornings_on
    komfort: int = 42
    absenk: int = 34
    window: bool = False
    unit_type: int = 0
    parent_id: int = 0  # HAN-FUN unit: its device; group: its master
    members: tuple[int, ...] = ()

    @property
    def ain_compact(self) -> str:
        return self.ain.replace(" ", "")


FRIDGE = Load(6.0, 55.0, (1.0,) * 24, 1.0, 0.35, 0.5)
TV = Load(0.4, 95.0, (0,) * 12 + (0.3, 0.3) + (0,) * 4 + (1.0,) * 5 + (0.2,), 0.95, 0.6, 1.2)
WASHER = Load(0.3, 650.0, (0,) * 9 + (1.0, 0.8) + (0,) * 13, 0.4, 0.9, 1.1)


@dataclass(frozen=True, slots=True)
class HkrState:
    tist: int
    tsoll: int
    endperiod: int
    tchange: int
    window_open: bool
    window_end: int


@dataclass(frozen=True, slots=True)
class Stats:
    """One <stats> block: ``values`` newest first, None where the device has no value."""

    grid: int
    datatime: int
    values: tuple[int | None, ...]


_Reading = Callable[[Device, float], int]

_SCHEDULES: dict[str, tuple[tuple[int, str], ...]] = {
    "schedule": ((6, "komfort"), (22, "absenk")),
    "mornings_on": ((5, "on"), (6, "komfort"), (21, "absenk")),
}


_FIRMWARE = {
    Kind.PLUG: "04.27",
    Kind.GROUP: "1.0",
    Kind.THERMOSTAT: "05.16",
    Kind.CLIMATE: "05.10",
    Kind.REPEATER: "04.16",
    Kind.HANFUN: "05.08",
    Kind.UNIT: "0.0",
}


# The default house, one floor of it. Per entry: kind, AIN, name, product, settings.
# Ids follow the box's habits: devices from 16, groups from 900, HAN-FUN units from 2000.
# "members" and "parent" name other entries by their position in this table.
_FLOOR: tuple[tuple[Kind, str, str, str, dict[str, Any]], ...] = (
    (Kind.PLUG, "11657 0272633", "Kühlschrank", "FRITZ!DECT 200", {"load": FRIDGE, "room_c": 21.5}),
    (Kind.PLUG, "11657 0272641", "Fernseher", "FRITZ!DECT 200", {"load": TV, "offset_dc": -5}),
    (Kind.PLUG, "11630 0341877", "Waschmaschine", "FRITZ!DECT 210", {"load": WASHER}),
    (Kind.PLUG, "11630 0341905", "Terrasse", "FRITZ!DECT 210", {"load": FRIDGE, "present": False}),
    (Kind.GROUP, "grp303E4F-3F7D9D5B3", "Erdgeschoss", "", {"members": (0, 1)}),
    (
        Kind.THERMOSTAT,
        "09995 0421775",
        "Wohnzimmer",
        "FRITZ!DECT 302",
        {"offset_dc": -10, "battery": 80, "window": True, "room_c": 21.0},
    ),
    (
        Kind.THERMOSTAT,
        "09995 0421790",
        "Schlafzimmer",
        "FRITZ!DECT 301",
        {"hkr_mode": "off", "battery": 55, "room_c": 17.0, "komfort": 40, "absenk": 32},
    ),
    (
        Kind.THERMOSTAT,
        "09995 0421803",
        "Bad",
        "FRITZ!DECT 301",
        {"hkr_mode": "mornings_on", "battery": 9, "room_c": 22.5, "komfort": 46, "offset_dc": 5},
    ),
    (
        Kind.CLIMATE,
        "13096 0007308",
        "Bad Klima",
        "FRITZ!DECT 440",
        {"battery": 90, "room_c": 22.0, "offset_dc": -5},
    ),
    (Kind.REPEATER, "08761 1048079", "Flur", "FRITZ!DECT Repeater 100", {"room_c": 19.5}),
    (Kind.HANFUN, "12701 0053142", "Haustür", "FRITZ!DECT 350", {"battery": 100}),
    (Kind.UNIT, "12701 0053142-1", "Haustür", "FRITZ!DECT 350", {"unit_type": 513, "parent": 10}),
    (
        Kind.HANFUN,
        "11934 0059978",
        "Küchenfenster",
        "HAN-FUN",
        {"manufacturer": "0x0feb", "fw": "0.0"},
    ),
    (
        Kind.UNIT,
        "11934 0059978-1",
        "Küchenfenster",
        "HAN-FUN",
        {"unit_type": 514, "parent": 12, "manufacturer": "0x0feb"},
    ),
)


def build_devices(count: int | None, seed: int) -> list[Device]:
    """The default house (count None), or whole copies of it until about ``count`` entries."""
    floors = 1 if count is None else max(1, round(count / len(_FLOOR)))
    devices = [dev for floor in range(floors) for dev in _floor(floor, seed)]
    if count is not None and len(devices) > count:
        ids = {d.id for d in devices[:count]}
        devices = [d for d in devices[:count] if d.parent_id in ids | {0} and set(d.members) <= ids]
    return devices


def _floor(floor: int, seed: int) -> list[Device]:
    units = groups = 0
    ids: list[int] = []
    for n, (kind, _, _, _, _) in enumerate(_FLOOR):
        if kind is Kind.UNIT:
            ids.append(2000 + 2 * floor + units)
            units += 1
        elif kind is Kind.GROUP:
            ids.append(900 + 2 * floor + groups)
            groups += 1
        else:
            ids.append(16 + 16 * floor + n)
    devices = []
    for n, (kind, template_ain, name, product, settings) in enumerate(_FLOOR):
        extra = dict(settings)
        if "parent" in extra:
            extra["parent_id"] = ids[extra.pop("parent")]
        extra["members"] = tuple(ids[i] for i in extra.get("members", ()))
        ain = template_ain
        serial, _, unit = ain.partition("-")
        if kind is Kind.GROUP:  # named after the box's MAC address, not a DECT serial
            ain = f"{serial}-{int(unit, 16) + floor:X}"
        elif floor:
            prefix, number = serial.split(" ")
            ain = f"{prefix} {int(number) + 1000 * floor:07d}" + (f"-{unit}" if unit else "")
        devices.append(
            Device(
                kind,
                ain,
                ids[n],
                name + (f" {floor + 1}" if floor else ""),
                product,
                key=_splitmix(seed * 1_000_003 + ids[n]),
                commissioned=INSTALLED + DAY_S * (7 * n + 3 * floor),
                **{"fw": _FIRMWARE[kind], **extra},
            )
        )
    return devices


@dataclass(slots=True)
class _Meter:
    prefix: list[float] = field(default_factory=lambda: [0.0])  # Wh before each day
    events: list[tuple[float, bool]] = field(default_factory=list)  # switch changes


class House:
    """Readings of every device at a given time; switch changes are the only state."""

    def __init__(self, devices: list[Device], tz: tzinfo) -> None:
        self.devices = devices
        self.tz = tz
        self.by_id = {d.id: d for d in devices}
        self._by_ain = {d.ain_compact: d for d in devices}
        self._meters = {d.id: _Meter() for d in devices if d.kind is Kind.PLUG}
        self._shifts: dict[int, int] = {}
        self._lock = threading.Lock()

    def find(self, ain: str) -> Device | None:
        return self._by_ain.get(ain.replace(" ", "").replace("+", ""))

    def members(self, group: Device) -> list[Device]:
        return [self.by_id[i] for i in group.members if i in self.by_id]

    # ---- switching ------------------------------------------------------------------------

    def switch_on(self, dev: Device, t: float) -> bool:
        if dev.kind is Kind.GROUP:
            return any(self.switch_on(m, t) for m in self.members(dev))
        state = True
        for when, on in self._meters[dev.id].events:
            if when <= t:
                state = on
        return state

    def set_switch(self, dev: Device, t: float, on: bool) -> None:
        targets = self.members(dev) if dev.kind is Kind.GROUP else [dev]
        with self._lock:
            for target in targets:
                meter = self._meters[target.id]
                meter.events = [e for e in meter.events if e[0] <= t]
                meter.events.append((t, on))

    def _on_fraction(self, dev: Device, a: float, b: float) -> float:
        off = sum(min(e, b) - max(s, a) for s, e in self._off_spans(dev, b) if e > a)
        return 1.0 - off / (b - a)

    def _off_spans(self, dev: Device, until: float) -> list[tuple[float, float]]:
        spans: list[tuple[float, float]] = []
        off_since: float | None = None
        for when, on in self._meters[dev.id].events:
            if when >= until:
                break
            if not on and off_since is None:
                off_since = when
            elif on and off_since is not None:
                spans.append((off_since, when))
                off_since = None
        if off_since is not None:
            spans.append((off_since, until))
        return spans

    # ---- power and energy -----------------------------------------------------------------

    def _shift_h(self, day: int) -> int:
        """Local minus UTC hours on that day: profiles are written in local hours."""
        shift = self._shifts.get(day)
        if shift is None:
            offset = datetime.fromtimestamp(day * DAY_S + DAY_S // 2, self.tz).utcoffset()
            shift = int(offset.total_seconds() // HOUR_S) if offset else 0
            self._shifts[day] = shift
        return shift

    def _day_factor(self, dev: Device, day: int) -> float:
        load = dev.load
        assert load is not None
        if unit_noise(dev.key, 1, day) >= load.day_prob:
            return 0.0
        return load.day_lo + (load.day_hi - load.day_lo) * unit_noise(dev.key, 2, day)

    def _hour_w(self, dev: Device, day: int, hour: int) -> float:
        """Mean power of one UTC hour; the jitter cancels in pairs of hours."""
        load = dev.load
        assert load is not None
        weight = load.profile[(hour + self._shift_h(day)) % 24]
        jitter = load.base_w * 0.2 * (2 * unit_noise(dev.key, 3, day, hour // 2) - 1)
        return (
            load.base_w
            + load.active_w * weight * self._day_factor(dev, day)
            + (-jitter if hour % 2 else jitter)
        )

    def _slot_w(self, dev: Device, day: int, hour: int, slot: int, level: float) -> float:
        """Power of one 10 s slot; the deviation cancels in pairs of slots."""
        dev_w = level * 0.08 * (2 * unit_noise(dev.key, 4, day, hour, slot // 2) - 1)
        return level - dev_w if slot % 2 else level + dev_w

    def _day_wh(self, dev: Device, day: int) -> float:
        load = dev.load
        assert load is not None
        return 24 * load.base_w + load.active_w * sum(load.profile) * self._day_factor(dev, day)

    def raw_power_w(self, dev: Device, t: float) -> float:
        if t < dev.commissioned:
            return 0.0
        day, rest = divmod(int(t), DAY_S)
        hour, rest = divmod(rest, HOUR_S)
        level = self._hour_w(dev, day, hour)
        return self._slot_w(dev, day, hour, rest // SLOT_S, level)

    def _raw_wh(self, dev: Device, t: float) -> float:
        if t <= dev.commissioned:
            return 0.0
        day = int(t // DAY_S)
        first = dev.commissioned // DAY_S
        meter = self._meters[dev.id]
        with self._lock:
            while len(meter.prefix) <= day - first:
                done = len(meter.prefix) - 1
                meter.prefix.append(meter.prefix[-1] + self._day_wh(dev, first + done))
            total = meter.prefix[day - first]
        in_day = t - day * DAY_S
        hour = int(in_day // HOUR_S)
        total += sum(self._hour_w(dev, day, h) for h in range(hour))
        level = self._hour_w(dev, day, hour)
        in_hour = in_day - hour * HOUR_S
        slot = int(in_hour // SLOT_S)
        total += level * slot * SLOT_S / HOUR_S
        if slot % 2:
            total += (self._slot_w(dev, day, hour, slot - 1, level) - level) * SLOT_S / HOUR_S
        total += self._slot_w(dev, day, hour, slot, level) * (in_hour - slot * SLOT_S) / HOUR_S
        return total

    def power_w(self, dev: Device, t: float) -> float:
        if dev.kind is Kind.GROUP:
            return sum(self.power_w(m, t) for m in self.members(dev))
        return self.raw_power_w(dev, t) if self.switch_on(dev, t) else 0.0

    def energy_wh(self, dev: Device, t: float) -> float:
        """The meter since commissioning: the integral of ``power_w``."""
        if dev.kind is Kind.GROUP:
            return float(sum(int(self.energy_wh(m, t)) for m in self.members(dev)))
        total = self._raw_wh(dev, t)
        for a, b in self._off_spans(dev, t):
            total -= self._raw_wh(dev, b) - self._raw_wh(dev, a)
        return total

    def voltage_mv(self, dev: Device, t: float) -> int:
        slot = int(t // SLOT_S)
        daily = math.sin(2 * math.pi * (t % DAY_S) / DAY_S)
        return round(230_000 + 2_500 * daily + 700 * (2 * unit_noise(dev.key, 5, slot) - 1))

    # ---- climate --------------------------------------------------------------------------

    def celsius_dc(self, dev: Device, t: float) -> int:
        """Temperature in 0.1 °C with the offset already applied, in 0.5 °C steps."""
        slot = int(t // CLIMATE_SLOT_S)
        start = slot * CLIMATE_SLOT_S
        daily = math.sin(2 * math.pi * ((start % DAY_S) / DAY_S - 0.375))
        raw = dev.room_c * 10 + 15 * daily + 6 * (2 * unit_noise(dev.key, 6, slot) - 1)
        return 5 * round(raw / 5) + dev.offset_dc

    def humidity_pct(self, dev: Device, t: float) -> int:
        slot = int(t // CLIMATE_SLOT_S)
        daily = math.sin(2 * math.pi * ((slot * CLIMATE_SLOT_S % DAY_S) / DAY_S - 0.1))
        return round(52 + 9 * daily + 4 * (2 * unit_noise(dev.key, 7, slot) - 1))

    def hkr(self, dev: Device, t: float) -> HkrState:
        celsius = self.celsius_dc(dev, t)
        tist = min(56, max(16, round(celsius / 5)))
        local = datetime.fromtimestamp(t, self.tz)
        window_end = 0
        if dev.window and local.hour in (8, 12, 16, 20) and local.minute < 10:
            window_end = self._local(local.date(), local.hour, 10)
        codes = {"komfort": dev.komfort, "absenk": dev.absenk, "on": 254}
        periods = _SCHEDULES.get(dev.hkr_mode)
        if periods is None:  # OFF: no programme, nothing changes
            return HkrState(tist, 253, 0, 255, window_end > 0, window_end)
        current = periods[-1][1]
        next_day, (next_hour, next_name) = local.date() + timedelta(days=1), periods[0]
        for hour, name in periods:
            if hour <= local.hour:
                current = name
            else:
                next_day, next_hour, next_name = local.date(), hour, name
                break
        return HkrState(
            tist,
            codes[current],
            self._local(next_day, next_hour),
            codes[next_name],
            window_end > 0,
            window_end,
        )

    def _local(self, day: date, hour: int, minute: int = 0) -> int:
        return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz).timestamp())

    def alert(self, dev: Device, t: float) -> tuple[bool, int]:
        """Contact state (True = open) and the time it last changed."""
        grid = 300 if dev.unit_type == 513 else 900
        slot = int(t // grid)

        def is_open(k: int) -> bool:
            return unit_noise(dev.key, 8, k) < 0.12

        state = is_open(slot)
        for back in range(1, 2000):
            if is_open(slot - back) != state:
                return state, (slot - back + 1) * grid
        return state, dev.commissioned

    def button_pressed(self, dev: Device, button: int, t: float) -> int:
        period = int(t // 21600)
        for p in (period, period - 1):
            pressed = int((p + unit_noise(dev.key, 9, button, p)) * 21600)
            if pressed <= t:
                return pressed
        return 0

    # ---- statistics -----------------------------------------------------------------------

    def stats(self, dev: Device, t: float) -> dict[str, list[Stats]]:
        """getbasicdevicestats content by element name, in the order of real boxes."""
        out: dict[str, list[Stats]] = {}
        if dev.kind in (Kind.HANFUN, Kind.UNIT):
            return out
        if not dev.present:  # the elements are there, without <stats>
            names = ["temperature", "voltage", "power", "energy"]
            return {n: [] for n in (names if dev.kind is Kind.PLUG else names[:1])}
        if dev.kind is not Kind.GROUP:
            gaps = dev.kind in (Kind.CLIMATE, Kind.REPEATER)
            out["temperature"] = [
                self._series(dev, t, CLIMATE_SLOT_S, 96, self.celsius_dc, gaps=gaps)
            ]
            if dev.kind is Kind.CLIMATE:
                out["humidity"] = [
                    self._series(dev, t, CLIMATE_SLOT_S, 96, self.humidity_pct, gaps=gaps)
                ]
        if dev.kind in (Kind.PLUG, Kind.GROUP):
            if dev.kind is Kind.PLUG:
                out["voltage"] = [self._series(dev, t, SLOT_S, 360, self.voltage_mv)]
            out["power"] = [self._series(dev, t, SLOT_S, 360, self._stat_power)]
            out["energy"] = [
                self._energy_series(dev, t, months=True),
                self._energy_series(dev, t, months=False),
            ]
        return out

    def _stat_power(self, dev: Device, start: float) -> int:
        """Mean power of the 10 s slot starting at ``start``, in 0.01 W."""
        if dev.kind is Kind.GROUP:
            return sum(self._stat_power(m, start) for m in self.members(dev))
        watts = self.raw_power_w(dev, start) * self._on_fraction(dev, start, start + SLOT_S)
        return round(watts * 100)

    def _series(
        self, dev: Device, t: float, grid: int, count: int, value: _Reading, *, gaps: bool = False
    ) -> Stats:
        newest = int(t // grid) * grid
        first = min((m.commissioned for m in self.members(dev)), default=dev.commissioned)
        values: list[int | None] = []
        for i in range(count):
            start = newest - i * grid
            lost = gaps and i > 0 and unit_noise(dev.key, 10, start) < 0.02
            values.append(None if start < first or lost else value(dev, start))
        return Stats(grid, newest, tuple(values))

    def _energy_series(self, dev: Device, t: float, *, months: bool) -> Stats:
        today = datetime.fromtimestamp(t, self.tz).date()
        starts: list[int] = []
        for i in range(12 if months else 31):
            if months:
                month = today.year * 12 + today.month - 1 - i
                day = date(month // 12, month % 12 + 1, 1)
            else:
                day = today - timedelta(days=i)
            starts.append(self._local(day, 0))
        first = min((m.commissioned for m in self.members(dev)), default=dev.commissioned)
        ends = [t, *starts[:-1]]
        values = tuple(
            None if end <= first else int(self.energy_wh(dev, end)) - int(self.energy_wh(dev, s))
            for s, end in zip(starts, ends, strict=True)
        )
        return Stats(2678400 if months else DAY_S, starts[0], values)
