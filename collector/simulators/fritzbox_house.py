"""The simulated house behind the FRITZ!Box: devices and their readings as functions of time.

The devices themselves (kinds, loads, the default floor) are :mod:`.fritzbox_devices`.
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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from collector.simulators.fritzbox_devices import (
    _SCHEDULES,
    CLIMATE_SLOT_S,
    DAY_S,
    HOUR_S,
    SLOT_S,
    Device,
    HkrState,
    Kind,
    Stats,
    _Reading,
    build_devices,
)
from collector.simulators.noise import unit_noise

__all__ = ["Device", "HkrState", "House", "Kind", "Stats", "build_devices"]


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
