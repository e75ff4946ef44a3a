"""The devices of the simulated FRITZ!Box house: kinds, appliance loads, the default floor
and how copies of it are numbered.
What the devices report over time is :mod:`.fritzbox_house`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from collector.simulators.noise import splitmix

SLOT_S = 10  # power and voltage statistics grid
CLIMATE_SLOT_S = 900  # temperature and humidity statistics grid
HOUR_S = 3600
DAY_S = 86400
INSTALLED = 1672531200  # 2023-01-01T00:00:00Z: the first device of the default house


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
                key=splitmix(seed * 1_000_003 + ids[n]),
                commissioned=INSTALLED + DAY_S * (7 * n + 3 * floor),
                **{"fw": _FIRMWARE[kind], **extra},
            )
        )
    return devices
