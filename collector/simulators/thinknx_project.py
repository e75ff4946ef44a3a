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

import base64
import math
import random
import threading
from dataclasses import dataclass, replace
from enum import StrEnum

from collector.simulators.noise import unit_noise

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


class Kind(StrEnum):
    THERMOSTAT = "thermostat"
    HVAC = "hvac"
    LIGHT = "light"
    DIMMER = "dimmer"
    BLIND = "blind"
    ANALOG = "analog"


class Profile(StrEnum):
    """The signal behind an analog object."""

    HOUSE_POWER = "house_power"  # kW, a household's load curve
    PV_POWER = "pv_power"  # kW, solar production by daylight
    METER = "meter"  # kWh, the integral of another object's power
    LUX = "lux"  # outdoor illuminance
    OUTDOOR_C = "outdoor_c"
    HUMIDITY = "humidity"
    CO2 = "co2"


#: Status controllers each kind answers; a dimmer is a light with a level.
STATUS: dict[Kind, tuple[str, ...]] = {
    Kind.THERMOSTAT: ("actualtemp", "setpointstatus", "tempmodestatus", "chronoenstatus"),
    Kind.HVAC: ("hvacpowerstatus", "hvacsetpointstatus", "hvacmodestatus", "hvacfanset",
                "hvacfanstatus"),
    Kind.LIGHT: ("powerstatus",),
    Kind.DIMMER: ("powerstatus", "powerlevelstatus"),
    Kind.BLIND: ("heightlevelstatus", "blindanglestatus"),
    Kind.ANALOG: ("getvalue",),
}


@dataclass(frozen=True, slots=True)
class KnxObject:
    guid: str
    kind: Kind
    name: str
    room: str
    comm_obj: int  # the first of its communication objects; one per controller
    quantity: str | None = None  # analog only: the config's quantity and unit
    unit: str | None = None
    text: bool = False  # status values as numeric strings ("21.5"), as some servers send
    scale: float = 1.0  # comfort setpoint (°C), rated or peak power (kW), first reading (kWh)
    mode: int = 1  # thermostat / HVAC mode at start
    chrono: bool = True  # thermostat: chrono scheduling enabled at start
    profile: Profile | None = None
    meter_of: str | None = None  # METER: guid of the power object it integrates
    #: Status controllers of its kind this object does not have (no sensor of its own, no
    #: slats, no fan object): "Not all capabilities are available to all the devices".
    lacks: tuple[str, ...] = ()

    def has(self, controller: str) -> bool:
        """Whether this object answers the status controller ``controller``."""
        return controller in STATUS[self.kind] and controller not in self.lacks

    def config(self) -> dict[str, str]:
        """This object as a ``[[thinknx.objects]]`` entry."""
        entry = {"guid": self.guid, "kind": str(self.kind), "name": self.name, "room": self.room}
        if self.quantity is not None and self.unit is not None:
            entry |= {"quantity": self.quantity, "unit": self.unit}
        return entry


_A = Kind.ANALOG
_NO_FAN = ("hvacfanset", "hvacfanstatus")
_NO_SLATS = ("blindanglestatus",)
# name, room, kind, settings: one flat of the default project
_FLAT: tuple[tuple[str, str, Kind, dict[str, object]], ...] = (
    ("Termostato Soggiorno", "Soggiorno", Kind.THERMOSTAT, {"scale": 21.0}),
    ("Termostato Camera", "Camera da letto", Kind.THERMOSTAT, {"scale": 19.5, "text": True}),
    ("Termostato Bagno", "Bagno", Kind.THERMOSTAT, {"scale": 23.0, "chrono": False}),
    ("Clima Soggiorno", "Soggiorno", Kind.HVAC, {"scale": 24.0, "mode": 0}),
    ("Clima Studio", "Studio", Kind.HVAC, {"scale": 22.5, "mode": 4, "text": True}),
    ("Luce Soggiorno", "Soggiorno", Kind.LIGHT, {}),
    ("Luce Cucina", "Cucina", Kind.LIGHT, {}),
    ("Luce Giardino", "Esterno", Kind.LIGHT, {"text": True}),
    ("Dimmer Camera", "Camera da letto", Kind.DIMMER, {}),
    ("Dimmer Studio", "Studio", Kind.DIMMER, {"text": True}),
    # roller shutters have no slats; the louvres of the study do
    ("Tapparella Soggiorno", "Soggiorno", Kind.BLIND, {"lacks": _NO_SLATS}),
    ("Tapparella Camera", "Camera da letto", Kind.BLIND, {"text": True, "lacks": _NO_SLATS}),
    ("Frangisole Studio", "Studio", Kind.BLIND, {}),
    ("Consumo casa", "Quadro elettrico", _A,
     {"profile": Profile.HOUSE_POWER, "quantity": "power", "unit": "kW", "scale": 1.0}),
    ("Produzione fotovoltaico", "Quadro elettrico", _A,
     {"profile": Profile.PV_POWER, "quantity": "power", "unit": "kW", "scale": 4.5,
      "text": True}),
    ("Energia casa", "Quadro elettrico", _A,
     {"profile": Profile.METER, "quantity": "energy", "unit": "kWh", "scale": 15234.567,
      "meter_of": "Consumo casa", "text": True}),
    ("Energia fotovoltaico", "Quadro elettrico", _A,
     {"profile": Profile.METER, "quantity": "energy", "unit": "kWh", "scale": 8123.456,
      "meter_of": "Produzione fotovoltaico"}),
    ("Luminosità esterna", "Esterno", _A, {"profile": Profile.LUX, "quantity": "luminance",
                                            "unit": "lx", "scale": 60000.0}),
    ("Temperatura esterna", "Esterno", _A,
     {"profile": Profile.OUTDOOR_C, "quantity": "temperature", "unit": "°C", "text": True}),
    ("Umidità bagno", "Bagno", _A, {"profile": Profile.HUMIDITY, "quantity": "humidity",
                                    "unit": "%"}),
    ("CO2 soggiorno", "Soggiorno", _A, {"profile": Profile.CO2, "quantity": "co2",
                                        "unit": "ppm"}),
    # a zone valve run from the room controller: no sensor of its own and no chrono program
    ("Termostato Ingresso", "Ingresso", Kind.THERMOSTAT,
     {"scale": 20.0, "chrono": False, "lacks": ("actualtemp", "chronoenstatus")}),
    # a split unit whose fan speed is not wired to the bus
    ("Clima Camera", "Camera da letto", Kind.HVAC, {"scale": 25.0, "mode": 0, "lacks": _NO_FAN}),
)


def _guid(rng: random.Random) -> str:
    """A 22-character GUID as Thinknx shows them (a UUID in URL-safe base64)."""
    return base64.urlsafe_b64encode(rng.randbytes(16)).decode("ascii").rstrip("=")


def build_objects(count: int | None = None, seed: int = 0) -> list[KnxObject]:
    """The default project (count None), or flats of it until exactly ``count`` objects."""
    rng = random.Random(seed)
    flats = 1 if count is None else max(1, math.ceil(count / len(_FLAT)))
    out: list[KnxObject] = []
    for flat in range(flats):
        suffix = f" {flat + 1}" if flat else ""
        guids: dict[str, str] = {}
        for name, room, kind, table_settings in _FLAT:
            settings = dict(table_settings)
            meter_of = settings.pop("meter_of", None)
            guids[name] = _guid(rng)
            obj = KnxObject(
                guids[name], kind, name + suffix, room + suffix, 100 + 8 * len(out),
                **settings,  # type: ignore[arg-type]
            )
            if isinstance(meter_of, str):
                obj = replace(obj, meter_of=guids[meter_of])
            out.append(obj)
    return out if count is None else out[:count]


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
