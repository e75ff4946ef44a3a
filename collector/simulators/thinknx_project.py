"""The KNX project behind the simulated Thinknx server: its objects and their values over time.

Every value is a function of the simulator's clock and of the commands received, so a fake
clock gives repeatable answers. Room temperatures relax towards the active setpoint (heating
faster than the room cools down), blinds run at a fixed speed towards a target that changes
every hour, and each energy meter is the exact integral of the power object it measures:
power is constant within each 10 s slot and the meter adds ``kW * 10 s`` per slot.

Modes and codes are those of the Integration Kit (thinknx-integration-kit-en.md):
tempmode 0 standby / 1 comfort / 2 night-economy / 3 frost; hvacmode 0 cooling / 1 heating /
2 dry / 3 fan / 4 auto; fan speed 0 auto / 1 minimum / 2 average / 3 maximum; levels, blind
height and angle in percent.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from collector.simulators.noise import unit_noise
from collector.simulators.thinknx_objects import (
    STATUS,
    Kind,
    KnxObject,
    Profile,
    build_objects,
)

__all__ = ["STATUS", "Kind", "KnxObject", "Project", "build_objects"]

SLOT_S = 10  # analog meters: power constant within a slot
MINUTE_S = 60
QUARTER_S = 900  # lights, dimmers and fans change at most every quarter of an hour
HOUR_S = 3600
DAY_S = 86400
TAU_HEAT_S = 1800.0  # a heated room closes the gap to its setpoint with this time constant
TAU_COOL_S = 5400.0  # and cools down more slowly
BLIND_SPEED_PCT_S = 2.0  # full travel in 50 s
FROST_C = 7.0
#: Active setpoint of each thermostat mode relative to the comfort setpoint (frost: absolute).
MODE_DELTA_C = {0: -2.0, 1: 0.0, 2: -3.5}


def _noise(obj: KnxObject, *parts: int) -> float:
    return unit_noise(int.from_bytes(obj.guid.encode()[:8], "little"), *parts)


def _hour(now: float) -> float:
    """Hour of the day, UTC (the simulated plant lives in UTC)."""
    return (now % DAY_S) / HOUR_S


def _daylight(now: float) -> float:
    """0 at night, 1 at solar noon (13:00 UTC), from 06:00 to 20:00."""
    h = _hour(now)
    return math.sin(math.pi * (h - 6.0) / 14.0) if 6.0 < h < 20.0 else 0.0


@dataclass(slots=True)
class _Room:
    t: float
    temp_c: float


@dataclass(slots=True)
class _Blind:
    t: float
    pos: float
    target: float
    override_until: float = 0.0  # a commanded target holds until the next hour


@dataclass(slots=True)
class _Meter:
    slot: int
    kwh: float


class Project:
    """The objects of one server and their live state; thread-safe."""

    def __init__(self, objects: list[KnxObject], *, start: float) -> None:
        self.objects = tuple(objects)
        self.by_guid = {o.guid: o for o in objects}
        if len(self.by_guid) != len(objects):
            raise ValueError("two objects share a guid")
        self.start = start
        self._lock = threading.Lock()
        self._set: dict[tuple[str, str], float] = {}  # (guid, status controller) -> commanded
        self._rooms: dict[str, _Room] = {}
        self._blinds: dict[str, _Blind] = {}
        self._meters: dict[str, _Meter] = {}

    # ---- reading ------------------------------------------------------------------------

    def status(self, obj: KnxObject, controller: str, now: float) -> float:
        """The value a status controller answers for ``obj`` at ``now`` (already rounded)."""
        with self._lock:
            return self._status(obj, controller, now)

    def _status(self, obj: KnxObject, controller: str, now: float) -> float:
        if controller == "actualtemp":
            room = self._room(obj, now)
            return round(room.temp_c + (_noise(obj, int(now // MINUTE_S)) - 0.5) * 0.1, 1)
        if controller == "setpointstatus":
            return self._setpoint(obj, now)
        if controller == "tempmodestatus":
            return self._temp_mode(obj, now)
        if controller == "chronoenstatus":
            return self._set.get((obj.guid, controller), float(obj.chrono))
        if controller == "hvacpowerstatus":
            return self._hvac_on(obj, now)
        if controller == "hvacsetpointstatus":
            return self._set.get((obj.guid, controller), obj.scale)
        if controller == "hvacmodestatus":
            return self._set.get((obj.guid, controller), float(obj.mode))
        if controller in ("hvacfanset", "hvacfanstatus"):
            fan = self._set.get((obj.guid, "hvacfanset"))
            if fan is not None:
                return fan
            return float(int(_noise(obj, 7, int(now // QUARTER_S)) * 4))
        if controller == "powerstatus":
            on = self._light_level(obj, now) > 0
            return 1.0 if on else 0.0
        if controller == "powerlevelstatus":
            return self._light_level(obj, now)
        if controller == "heightlevelstatus":
            return float(round(self._blind(obj, now).pos))
        if controller == "blindanglestatus":
            return self._set.get((obj.guid, controller), 10.0 * int(_noise(obj, 9, int(
                now // HOUR_S)) * 11))
        if controller == "getvalue":
            return self._analog(obj, now)
        raise KeyError(controller)

    def _temp_mode(self, obj: KnxObject, now: float) -> float:
        chrono = self._set.get((obj.guid, "chronoenstatus"), float(obj.chrono))
        if chrono:  # the chrono table: comfort from 06:00 to 22:00, night-economy otherwise
            return 1.0 if 6.0 <= _hour(now) < 22.0 else 2.0
        return self._set.get((obj.guid, "tempmodestatus"), float(obj.mode))

    def _setpoint(self, obj: KnxObject, now: float) -> float:
        mode = int(self._temp_mode(obj, now))
        own = self._set.get((obj.guid, f"setpoint{mode}"))
        if own is not None:
            return own
        return FROST_C if mode == 3 else obj.scale + MODE_DELTA_C[mode]

    def _room(self, obj: KnxObject, now: float) -> _Room:
        """Advance the room's temperature to ``now``, segment by segment of the chrono table."""
        room = self._rooms.get(obj.guid)
        if room is None:
            start = min(now, self.start)
            room = _Room(start, self._setpoint(obj, start) - 1.0 - _noise(obj, 1))
            self._rooms[obj.guid] = room
        while room.t < now:
            # the setpoint only changes on the hour (chrono table) or by a command, which
            # advances the room first
            end = min(now, (math.floor(room.t / HOUR_S) + 1) * HOUR_S)
            target = self._setpoint(obj, room.t)
            tau = TAU_HEAT_S if room.temp_c < target else TAU_COOL_S
            room.temp_c = target + (room.temp_c - target) * math.exp(-(end - room.t) / tau)
            room.t = end
        return room

    def _hvac_on(self, obj: KnxObject, now: float) -> float:
        own = self._set.get((obj.guid, "hvacpowerstatus"))
        if own is not None:
            return own
        return 1.0 if 9.0 <= _hour(now) < 19.0 else 0.0

    def _light_level(self, obj: KnxObject, now: float) -> float:
        own = self._set.get((obj.guid, "powerlevelstatus"))
        if own is not None:
            return own
        h, chance = _hour(now), _noise(obj, 5, int(now // QUARTER_S))
        on = chance < (0.8 if 18.0 <= h < 23.5 else 0.5 if 6.0 <= h < 8.0 else 0.05)
        if not on:
            return 0.0
        if obj.kind is Kind.LIGHT:
            return 100.0
        return 20.0 + 5.0 * int(_noise(obj, 6, int(now // QUARTER_S)) * 17)  # 20..100

    def _blind_target(self, obj: KnxObject, now: float) -> float:
        h = _hour(now)
        if h < 7.0 or h >= 21.0:
            return 100.0  # closed at night
        return (0.0, 0.0, 0.0, 30.0, 60.0, 80.0)[int(_noise(obj, 8, int(now // HOUR_S)) * 6)]

    def _blind(self, obj: KnxObject, now: float) -> _Blind:
        blind = self._blinds.get(obj.guid)
        if blind is None:
            start = min(now, self.start)
            target = self._blind_target(obj, start)
            blind = _Blind(start, target, target)
            self._blinds[obj.guid] = blind
        while blind.t < now:
            end = min(now, (math.floor(blind.t / HOUR_S) + 1) * HOUR_S)
            step = BLIND_SPEED_PCT_S * (end - blind.t)
            gap = blind.target - blind.pos
            blind.pos = blind.target if abs(gap) <= step else blind.pos + math.copysign(step, gap)
            blind.t = end
            if end % HOUR_S == 0 and end >= blind.override_until:
                blind.target = self._blind_target(obj, end)
        return blind

    # ---- analog values --------------------------------------------------------------------

    def _analog(self, obj: KnxObject, now: float) -> float:
        profile = obj.profile
        if profile is Profile.METER:
            return round(self._meter_kwh(obj, now), 3)
        if profile in (Profile.HOUSE_POWER, Profile.PV_POWER):
            return self.power_kw(obj, int(now // SLOT_S))
        minute = int(now // MINUTE_S)
        wave = math.sin(2.0 * math.pi * (_hour(now) - 9.0) / 24.0)  # warmest around 15:00
        if profile is Profile.LUX:
            clouds = 0.5 + 0.5 * _noise(obj, 3, minute)
            return float(round(obj.scale * _daylight(now) * clouds))
        if profile is Profile.OUTDOOR_C:
            return round(11.0 + 7.0 * wave + (_noise(obj, 3, minute) - 0.5) * 0.4, 1)
        if profile is Profile.HUMIDITY:
            return round(55.0 - 8.0 * wave + (_noise(obj, 3, minute) - 0.5) * 2.0, 1)
        if profile is Profile.CO2:
            occupied = 1.0 if 7.0 <= _hour(now) < 23.0 else 0.2
            return float(round(430.0 + 500.0 * occupied * _noise(obj, 4, int(now // QUARTER_S))))
        return 0.0

    def power_kw(self, obj: KnxObject, slot: int) -> float:
        """The power of a power object during 10-second ``slot`` (constant within it)."""
        t = slot * SLOT_S
        jitter = _noise(obj, 2, slot)
        if obj.profile is Profile.PV_POWER:
            clouds = 0.6 + 0.4 * _noise(obj, 3, t // MINUTE_S)
            return round(obj.scale * _daylight(t) * clouds * (0.98 + 0.04 * jitter), 3)
        h = int(_hour(t))
        shape = 2.0 if 18 <= h < 22 else 1.2 if 6 <= h < 9 else 1.0 if 11 <= h < 14 else (
            0.1 if h < 6 else 0.5)
        return round(obj.scale * (0.25 + shape * (0.4 + 0.6 * jitter)), 3)

    def _meter_kwh(self, obj: KnxObject, now: float) -> float:
        """The first reading plus the energy of every slot of the metered power since start."""
        source = self.by_guid.get(obj.meter_of or "")
        first_slot = int(self.start // SLOT_S)
        if source is None or now <= first_slot * SLOT_S:
            return obj.scale
        target = int(now // SLOT_S)
        meter = self._meters.get(obj.guid)
        if meter is None or meter.slot > target:  # first read, or the clock went back
            meter = _Meter(first_slot, obj.scale)
            self._meters[obj.guid] = meter
        while meter.slot < target:
            meter.kwh += self.power_kw(source, meter.slot) * SLOT_S / HOUR_S
            meter.slot += 1
        return meter.kwh + self.power_kw(source, target) * (now - target * SLOT_S) / HOUR_S

    # ---- commands -------------------------------------------------------------------------

    def command(self, obj: KnxObject, controller: str, value: float, now: float) -> None:
        """Apply a set command, given as the status controller it changes and the new value."""
        with self._lock:
            key = (obj.guid, controller)
            if obj.kind is Kind.THERMOSTAT:
                self._room(obj, now)  # the temperature so far followed the old setpoint
                if controller == "setpointstatus":
                    mode = int(self._temp_mode(obj, now))
                    self._set[(obj.guid, f"setpoint{mode}")] = value
                    return
                if controller == "tempmodestatus":  # a manual mode ends the chrono program
                    self._set[(obj.guid, "chronoenstatus")] = 0.0
            if controller == "heightlevelstatus":
                blind = self._blind(obj, now)
                blind.target = value
                blind.override_until = (math.floor(now / HOUR_S) + 1) * HOUR_S
                return
            if controller == "powerstatus":  # on/off of a light or dimmer: full or no level
                key, value = (obj.guid, "powerlevelstatus"), 100.0 * value
            self._set[key] = value

    def blind_stop(self, obj: KnxObject, now: float) -> None:
        with self._lock:
            blind = self._blind(obj, now)
            blind.target = blind.pos
            blind.override_until = (math.floor(now / HOUR_S) + 1) * HOUR_S
