"""The objects of the simulated KNX project: their kinds, the status controllers each kind
answers (thinknx-integration-kit-en.md), the capabilities some objects lack ("Not all
capabilities are available to all the devices") and the default project, one flat of
thermostats, HVAC units, lights, dimmers, blinds and analog meters, repeated to any size.
"""

from __future__ import annotations

import base64
import math
import random
from dataclasses import dataclass, replace
from enum import StrEnum


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
