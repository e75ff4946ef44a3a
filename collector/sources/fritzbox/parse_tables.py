"""Tables and records of the ``getdevicelistinfos`` parser (:mod:`.parse`): what a device
list hands out (``Stats``, ``DeviceInfo``, ``DeviceList``), the function-group table
(which elements of which group become which points, AHA-HTTP-Interface 1.2.1), resolved
once at import into what the parser's per-value loop needs, and what a device's attributes
say (read once per device while they stay the same). No I/O, no parsing here.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from collector.errors import ParseError
from collector.model import Reading, Tags, make_tags
from collector.sources.fritzbox import normalise as nz
from collector.sources.fritzbox.parse_stats import Element

_T = TypeVar("_T")


class Stats(enum.Flag):
    """Which ``getbasicdevicestats`` series a device can deliver."""

    NONE = 0
    TEMPERATURE = enum.auto()
    HUMIDITY = enum.auto()
    VOLTAGE = enum.auto()
    POWER = enum.auto()
    ENERGY = enum.auto()


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One ``<device>`` or ``<group>`` of the list."""

    device_id: str  # AIN without spaces
    internal_id: str  # the box's "id" attribute, used by group member lists
    name: str
    product: str
    manufacturer: str
    fwversion: str
    functionbitmask: int
    present: bool | None
    is_group: bool
    members: tuple[str, ...] = ()  # device_ids of a group's members
    stats: Stats = Stats.NONE
    unit_type: nz.HanFunUnitType | None = None  # HAN-FUN units only

    @property
    def device_tag(self) -> str:
        """The ``device`` tag of every point of this device, live or statistics: its name,
        or its AIN when the box gives it none (one rule, so one series per quantity)."""
        return self.name or self.device_id

    @property
    def tags(self) -> Tags:
        """The extra tags of this device's points (also for its statistics)."""
        return make_tags(model=self.product, scope="group" if self.is_group else None)

    @property
    def wants_stats(self) -> bool:
        """Worth a ``getbasicdevicestats`` request: connected and has a statistics series.
        Groups are never asked: their members are."""
        return bool(self.stats) and self.present is not False


@dataclass(frozen=True, slots=True)
class DeviceList:
    devices: tuple[DeviceInfo, ...]
    #: in document order
    readings: Sequence[Reading]
    problems: tuple[ParseError, ...] = ()

    def device(self, device_id: str) -> DeviceInfo | None:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        return None

# Labels of 0/1 states: (label for 0, label for 1).
_OFF_ON = ("off", "on")
_LOCK = ("unlocked", "locked")
_WINDOW = ("closed", "open")

_FlagSpecs = tuple[tuple[str, str, tuple[str, str]], ...]
_NumberSpecs = tuple[tuple[str, str, Callable[[int], float]], ...]

#: function group ("" for the device itself) -> (element, state name, labels) of its 0/1
#: elements (1.2.1 and newer firmware).
_FLAGS: dict[str, _FlagSpecs] = {
    "": (("txbusy", "tx_busy", ("idle", "busy")), ("batterylow", "battery_low", ("ok", "low"))),
    "switch": (
        ("state", "switch", _OFF_ON),
        ("lock", "lock", _LOCK),
        ("devicelock", "device_lock", _LOCK),
    ),
    "simpleonoff": (("state", "on_off", _OFF_ON),),
    "hkr": (
        ("windowopenactiv", "window_open", _WINDOW),
        ("boostactive", "boost", _OFF_ON),
        ("summeractive", "summer_mode", _OFF_ON),
        ("holidayactive", "holiday_mode", _OFF_ON),
        ("adaptiveHeatingActive", "adaptive_heating", _OFF_ON),
        ("adaptiveHeatingRunning", "adaptive_heating_running", ("idle", "running")),
        ("lock", "lock", _LOCK),
        ("devicelock", "device_lock", _LOCK),
        ("batterylow", "battery_low", ("ok", "low")),
    ),
    "blind": (("endpositionsset", "end_positions_set", ("no", "yes")),),
}

#: function group -> (element, measurement, conversion) of its numeric elements.
_NUMBERS: dict[str, _NumberSpecs] = {
    "": (("battery", "battery_pct", nz.percent),),
    "powermeter": (
        ("power", "power_w", nz.watts_from_milliwatts),
        ("energy", "energy_wh", nz.watt_hours),
        ("voltage", "voltage_v", nz.volts_from_millivolts),
    ),
    "temperature": (("celsius", "temperature_c", nz.celsius_from_tenths),),
    "humidity": (("rel_humidity", "humidity_pct", nz.percent),),
    "hkr": (("battery", "battery_pct", nz.percent),),
}

#: function group -> the statistics series a device with it delivers (1.2.2)
_STATS_OF = (
    ("temperature", Stats.TEMPERATURE),
    ("humidity", Stats.HUMIDITY),
    ("powermeter", Stats.POWER | Stats.VOLTAGE | Stats.ENERGY),
)

_STATS_FUNCTIONS = tuple(function for function, _ in _STATS_OF)

#: HKR 0.5 °C code elements that become setpoints, with their ``kind`` tag.
_SETPOINTS = (("komfort", ("kind", "comfort")), ("absenk", ("kind", "eco")))

# --------------------------------------------------------------------------- tables
# The tables above, resolved once at import into what the reading loop needs. The texts a
# box actually sends ("0", "1", "34", "auto", ...) are looked up in tables made with the
# normaliser; any other text (" 1", "inval", "2", ...) still goes through ``nz.raw_int``
# and the normaliser, which is where problems and warnings come from. Either way gives
# the same result.

#: A point's extra tag besides model and scope: ("name", state) or ("kind", setpoint kind).
_Extra = tuple[str, str] | None
#: What keeps a point from being written twice: (measurement, extra tag).
_Key = tuple[str, _Extra]
_Texts = dict[object, str | None]
#: What a function group has besides 0/1 and numeric elements: an unbound method of the
#: parser's device reader, called with (device, el, texts, top).
_Special = Callable[..., None]
#: (element, key, labels, documented text -> (value, label))
_Flag = tuple[str, _Key, tuple[str, str], dict[str, tuple[float, str]]]
#: (element, key, conversion)
_Number = tuple[str, _Key, Callable[[int], float]]


def _known(convert: Callable[[int], _T], raws: Iterable[int]) -> dict[str, _T]:
    """text -> ``convert`` of the documented raw values."""
    return {str(raw): convert(raw) for raw in raws}


def _flag(element: str, name: str, labels: tuple[str, str]) -> _Flag:
    known = {text: (float(on), labels[on]) for text, on in _known(nz.flag, (0, 1)).items()}
    return element, ("state", ("name", name)), labels, known


class _Group(NamedTuple):
    """How to read one function group ("" for the device's own elements)."""

    path: str  # of the group's elements in a problem
    flags: tuple[_Flag, ...]
    numbers: tuple[_Number, ...]
    special: _Special | None


def _group(group: str, special: _Special | None = None) -> _Group:
    return _Group(
        f"{group}/" if group else "",
        tuple(_flag(*spec) for spec in _FLAGS.get(group, ())),
        tuple((tag, (measurement, None), fn) for tag, measurement, fn in _NUMBERS.get(group, ())),
        special,
    )


#: <present> -> connected
_PRESENT = _known(nz.flag, (0, 1))
#: HKR code -> setting, for the temperatures, OFF, ON and unknown (the others warn)
_HKR_CODES = _known(
    nz.hkr_setting,
    (*range(nz.HKR_MIN_CODE, nz.HKR_MAX_CODE + 1), nz.HKR_OFF, nz.HKR_ON, nz.HKR_UNKNOWN),
)
#: thermostat mode -> (value, label) of its ``state`` point
_THERMOSTAT_MODES = {mode: (float(mode.value), mode.label) for mode in nz.ThermostatMode}
#: <hkr><errorcode> -> (value, label) of the ``thermostat_error`` point
_HKR_ERRORS = _known(
    lambda raw: (float(raw), nz.HkrError.from_code(raw).label),
    (error.value for error in nz.HkrError if error is not nz.HkrError.UNKNOWN),
)
#: <switch>/<blind><mode> -> (value, label) of its ``state`` point
_SWITCH_MODES = {
    text: (float(mode.value), mode.label)
    for text in ("auto", "manuell")
    if (mode := nz.SwitchMode.from_text(text)) is not nz.SwitchMode.UNKNOWN
}
_BUTTON = ("name", "button")

#: The fields of a ``Reading``, in order.
_Fields = tuple[str, float, datetime, str, str, str, str, Tags, str | None]

#: ``Reading`` without its checks, for the points of this parser: every value is a float
#: the normaliser made from an integer of at most 19 digits (so finite), every time is the
#: aware UTC time of the poll or of a button press. The checks would cost as much as the
#: rest of the reading; the tests hold every reading of this parser to them.
_reading: Callable[[_Fields], Reading] = functools.partial(tuple.__new__, Reading)


class _TagSets(dict[_Extra, Tags]):
    """extra tag -> all extra tags of a point, for the devices of one model and scope."""

    def __init__(self, model: str, scope: str | None) -> None:
        super().__init__()
        self.model = model
        self.scope = scope

    def __missing__(self, extra: _Extra) -> Tags:
        tags = make_tags(model=self.model, scope=self.scope, **dict([extra] if extra else []))
        self[extra] = tags
        return tags


@functools.lru_cache(maxsize=256)
def _tag_sets(model: str, scope: str | None) -> _TagSets:
    return _TagSets(model, scope)


def _device_info(device_id: str, internal_id: str, name: str, product: str, manufacturer: str,
                 fwversion: str, functionbitmask: int, present: bool | None, is_group: bool,
                 has_stats: tuple[bool, ...], unit_type: nz.HanFunUnitType | None,
                 ) -> DeviceInfo:  # fmt: skip
    """The DeviceInfo of a device; ``has_stats`` tells which function groups of
    ``_STATS_OF`` it has."""
    stats = Stats.NONE
    for (_, series), has in zip(_STATS_OF, has_stats, strict=True):
        if has and not is_group:  # groups are never asked: their members are
            stats |= series
    return DeviceInfo(device_id, internal_id, name, product, manufacturer, fwversion,
                      functionbitmask, present, is_group, (), stats, unit_type)  # fmt: skip


# --------------------------------------------------------------------------- device attributes


def _ain(identifier: str) -> str:
    """1.03: the AIN is given with a space ("08761 0000434"); it is used without."""
    return "".join(identifier.split())


class _Static(NamedTuple):
    """What a device's attributes say, the same in every poll while they do not change."""

    device_id: str  # "" when the element has no identifier
    internal_id: str  # the box's "id" attribute, stripped
    member_id: str | None  # its id in group member lists (devices with an identifier)
    where: str  # the element in a problem: device[ain=...] or device[id=...]
    model: str
    manufacturer: str
    fwversion: str
    functionbitmask: int
    bitmask_problem: str | None  # a bad functionbitmask, reported in every poll
    is_group: bool
    tag_sets: _TagSets
    #: (name, present, statistics groups, unit type) -> the DeviceInfo of an earlier poll
    infos: dict[tuple[object, ...], DeviceInfo]


#: (tag, attributes) -> what they say; bounded, as a box's devices are
_STATICS: dict[tuple[object, ...], _Static] = {}
_MAX_STATICS = 4096


def _static(el: Element, tag: object) -> _Static:
    key = (tag, tuple(el.attrib.items()))
    found = _STATICS.get(key)
    if found is None:
        if len(_STATICS) >= _MAX_STATICS:
            _STATICS.clear()
        found = _STATICS[key] = _read_static(el, tag)
    return found


def _read_static(el: Element, tag: object) -> _Static:
    identifier = el.get("identifier")
    internal_id = el.get("id")  # the box's own id, used by group member lists
    device_id = _ain(identifier or "")
    where = f"{tag}[ain={device_id}]" if device_id else f"{tag}[id={(internal_id or '?')[:40]}]"
    try:
        mask, problem = nz.raw_int(el.get("functionbitmask")) or 0, None
    except ValueError as err:
        mask, problem = 0, str(err)
    model = (el.get("productname") or "").strip()
    is_group = tag == "group"
    member = not is_group and identifier and internal_id
    return _Static(
        device_id=device_id,
        internal_id=(internal_id or "").strip(),
        member_id=internal_id.strip() if member and internal_id else None,
        where=where,
        model=model,
        manufacturer=(el.get("manufacturer") or "").strip(),
        fwversion=(el.get("fwversion") or "").strip(),
        functionbitmask=mask,
        bitmask_problem=problem,
        is_group=is_group,
        tag_sets=_tag_sets(model, "group" if is_group else None),
        infos={},
    )
