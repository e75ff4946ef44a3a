"""Pure parser of ``getdevicelistinfos`` (AHA-HTTP-Interface 1.2.1): bytes -> devices and
readings. No I/O here; every unit conversion lives in :mod:`.normalise`.

Decisions, in one place:

* ``device_id`` is the AIN without spaces (HAN-FUN units keep their ``-1`` suffix, groups
  their ``65:3A:18-900`` form). Group readings carry ``scope = group``.
* Temperature comes from ``<temperature><celsius>`` (0.1 °C, offset already applied).
  ``<hkr><tist>`` is the same sensor in 0.5 °C steps and is used only by a device without
  a ``<temperature>`` group, so there is never a second series of the same quantity.
* ``<hkr><tsoll>`` gives the ``thermostat_mode`` state (off / on / setpoint) and, when it
  is a temperature, ``setpoint_c`` kind=target. ``komfort``/``absenk``/``tchange`` give
  ``setpoint_c`` kind=comfort/eco/next when they are temperatures; OFF/ON/unknown there
  produce no point.
* A device that is not connected (``<present>0``) only reports the ``present`` state: its
  other elements hold stale or empty values.
* A button press is a ``state`` point (name=button, value 1, label "pressed") at the time
  of the press, so polling the same press again writes the same point.
* Not well-formed XML or a wrong root raises ``ParseError``. A bad value inside one device
  costs only that value: it is reported in ``DeviceList.problems`` (each a ``ParseError``
  naming the element) and the rest of the list is still read.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from collector.errors import ParseError
from collector.model import Reading, Tags, make_tags
from collector.sources.fritzbox import normalise as nz
from collector.sources.fritzbox.parse_stats import (
    SOURCE,
    Element,
    load_document,
    parse_devicestats,
    to_utc,
)

__all__ = ["DeviceInfo", "DeviceList", "Stats", "parse_devicelist", "parse_devicestats"]

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
    readings: tuple[Reading, ...]
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

#: function groups with readings
_GROUPS = frozenset({*_FLAGS, *_NUMBERS, "alert", "levelcontrol", "button"}) - {""}

#: function group -> the statistics series a device with it delivers (1.2.2)
_STATS_OF = (
    ("temperature", Stats.TEMPERATURE),
    ("humidity", Stats.HUMIDITY),
    ("powermeter", Stats.POWER | Stats.VOLTAGE | Stats.ENERGY),
)

#: HKR 0.5 °C code elements that become setpoints, with their ``kind`` tag.
_SETPOINTS = (("komfort", "comfort"), ("absenk", "eco"))


def parse_devicelist(xml: bytes, *, site: str, time: datetime) -> DeviceList:
    """Devices and readings of one ``getdevicelistinfos`` answer, polled at ``time``."""
    root = load_document(xml, "devicelist")
    when = to_utc(time)
    members_of = _internal_ids(root)
    devices: list[DeviceInfo] = []
    out = _Out([], [])
    for el in root:
        if el.tag not in ("device", "group"):
            continue
        ctx = _Device(el, site, when, out)
        if ctx.device_id:
            devices.append(ctx.read(members_of))
    return DeviceList(tuple(devices), tuple(out.readings), tuple(out.problems))


@dataclass(slots=True)
class _Out:
    readings: list[Reading]
    problems: list[ParseError]


def _internal_ids(root: Element) -> dict[str, str]:
    """internal id -> device_id of every <device>, for resolving group members. The first
    device wins when the box repeats an id (seen in real lists)."""
    out: dict[str, str] = {}
    for el in root.findall("device"):
        ident, internal = el.get("identifier"), el.get("id")
        if ident and internal:
            out.setdefault(internal.strip(), _ain(ident))
    return out


_Texts = dict[object, str | None]


def _texts(el: Element) -> _Texts:
    """Child tag -> text of an element: one pass instead of a search per value."""
    return {c.tag: c.text for c in el}


@functools.lru_cache(maxsize=4096)
def _tags(model: str, scope: str | None, extra: tuple[str, str] | None) -> Tags:
    return make_tags(model=model, scope=scope, **dict([extra] if extra else []))


def _ain(identifier: str) -> str:
    """1.03: the AIN is given with a space ("08761 0000434"); it is used without."""
    return "".join(identifier.split())


class _Device:
    """Reads one <device>/<group> element into a DeviceInfo and its readings."""

    def __init__(self, el: Element, site: str, time: datetime, out: _Out) -> None:
        self._el = el
        self.site = site
        self.time = time
        self.out = out
        self._seen: set[tuple[str, str, Tags]] = set()
        self.device_id = _ain(el.get("identifier") or "")
        self.where = f"{el.tag}[ain={self.device_id}]"
        if not self.device_id:
            self.where = f"{el.tag}[id={(el.get('id') or '?')[:40]}]"
            self.problem("@identifier", "device without identifier skipped")
        self.top = _texts(el)
        self.device = (self.top.get("name") or "").strip() or self.device_id
        self._model = (el.get("productname") or "").strip()
        self._scope = "group" if el.tag == "group" else None
        self._unit: nz.HanFunUnitType | None = None

    # -- plumbing -------------------------------------------------------------------

    def problem(self, path: str, message: str) -> None:
        self.out.problems.append(ParseError(message, part=f"{self.where}/{path}"))

    def raw(self, texts: _Texts, path: str, tag: str) -> int | None:
        try:
            return nz.raw_int(texts.get(tag))
        except ValueError as err:
            self.problem(f"{path}{tag}", str(err))
            return None

    def convert(self, path: str, raw: int, fn: Callable[[int], _T]) -> _T | None:
        try:
            return fn(raw)
        except ValueError as err:
            self.problem(path, str(err))
            return None

    def point(self, measurement: str, value: float, extra: tuple[str, str] | None = None,
              label: str | None = None, time: datetime | None = None, device_id: str = "",
              device: str = "") -> None:  # fmt: skip
        dev_id = device_id or self.device_id
        tags = _tags(self._model, self._scope, extra)
        key = (measurement, dev_id, tags)
        if key in self._seen:  # e.g. <battery> both on the device and in <hkr>
            return
        self._seen.add(key)
        reading = Reading(measurement, value, time or self.time, SOURCE, self.site, dev_id,
                          device or self.device, tags, label)  # fmt: skip
        self.out.readings.append(reading)

    def state(self, name: str, label: str, code: float, *, time: datetime | None = None,
              device_id: str = "", device: str = "") -> None:  # fmt: skip
        self.point("state", code, ("name", name), label, time, device_id, device)

    def flags(self, texts: _Texts, path: str, specs: _FlagSpecs) -> None:
        for tag, name, labels in specs:
            raw = self.raw(texts, path, tag)
            if raw is not None and (on := self.convert(path + tag, raw, nz.flag)) is not None:
                self.state(name, labels[on], float(raw))

    def numbers(self, texts: _Texts, path: str, specs: _NumberSpecs) -> None:
        for tag, measurement, fn in specs:
            raw = self.raw(texts, path, tag)
            if raw is not None and (value := self.convert(path + tag, raw, fn)) is not None:
                self.point(measurement, value)

    # -- the device -----------------------------------------------------------------

    def read(self, members_of: dict[str, str]) -> DeviceInfo:
        el = self._el
        is_group = el.tag == "group"
        mask = self._bitmask()
        self._unit = self._unit_type()
        present_raw = self.raw(self.top, "", "present")
        present = None if present_raw is None else self.convert("present", present_raw, nz.flag)
        if present is not None:
            label = "present" if present else "absent"
            self.state("present", label, float(present))
        groups = {str(t) for t in self.top}
        if present is not False:
            self.flags(self.top, "", _FLAGS[""])
            self.numbers(self.top, "", _NUMBERS[""])
            for group in el:
                self._group(group, groups)
        stats = Stats.NONE
        for function, series in () if is_group else _STATS_OF:
            if function in groups:
                stats |= series
        return DeviceInfo(
            device_id=self.device_id,
            internal_id=(el.get("id") or "").strip(),
            name=(self.top.get("name") or "").strip(),
            product=self._model,
            manufacturer=(el.get("manufacturer") or "").strip(),
            fwversion=(el.get("fwversion") or "").strip(),
            functionbitmask=mask,
            present=present,
            is_group=is_group,
            members=self._members(members_of) if is_group else (),
            stats=stats,
            unit_type=self._unit,
        )

    def _bitmask(self) -> int:
        try:
            return nz.raw_int(self._el.get("functionbitmask")) or 0
        except ValueError as err:
            self.problem("@functionbitmask", str(err))
            return 0

    def _members(self, members_of: dict[str, str]) -> tuple[str, ...]:
        text = self._el.findtext("groupinfo/members") or ""
        ids = (i.strip() for i in text.split(","))
        return tuple(members_of[i] for i in ids if i in members_of)

    def _unit_type(self) -> nz.HanFunUnitType | None:
        info = self._el.find("etsiunitinfo")
        if info is None:
            return None
        raw = self.raw(_texts(info), "etsiunitinfo/", "unittype")
        return None if raw is None else nz.HanFunUnitType.from_code(raw)

    def _group(self, el: Element, groups: set[str]) -> None:
        tag = el.tag
        if not isinstance(tag, str) or tag not in _GROUPS:
            return
        path = tag + "/"
        texts = _texts(el)
        if tag in _FLAGS:
            self.flags(texts, path, _FLAGS[tag])
        if tag in _NUMBERS:
            self.numbers(texts, path, _NUMBERS[tag])
        if tag == "switch":
            self._mode(texts, "switch_mode")
        elif tag == "blind":
            self._mode(texts, "blind_mode")
        elif tag == "hkr":
            self._hkr(el, texts, use_tist="temperature" not in groups)
        elif tag == "alert":
            self._alert(texts)
        elif tag == "levelcontrol":
            self._level(texts, "blind" if "blind" in groups else "level")
        elif tag == "button":
            self._button(el, texts)

    def _mode(self, texts: _Texts, name: str) -> None:
        text = texts.get("mode")
        if not nz.is_unknown(text):
            mode = nz.SwitchMode.from_text(text or "")
            if mode is not nz.SwitchMode.UNKNOWN:
                self.state(name, mode.label, float(mode.value))

    def _alert(self, texts: _Texts) -> None:
        raw = self.raw(texts, "alert/", "state")
        if raw is None:
            return
        if raw < 0:
            self.problem("alert/state", f"negative alert state: {raw}")
            return
        unit = self._unit
        labels = _WINDOW if unit is not None and unit.is_contact else ("clear", "alert")
        self.state("alert", labels[raw != 0], float(raw))

    def _level(self, texts: _Texts, kind: str) -> None:
        raw = self.raw(texts, "levelcontrol/", "levelpercentage")
        if raw is not None:
            value = self.convert("levelcontrol/levelpercentage", raw, nz.percent)
        elif (raw := self.raw(texts, "levelcontrol/", "level")) is not None:
            value = self.convert("levelcontrol/level", raw, nz.percent_from_level)
        else:
            return
        if value is not None:
            self.point("level_pct", value, ("kind", kind))

    def _hkr(self, el: Element, texts: _Texts, *, use_tist: bool) -> None:
        if use_tist:
            setting = self._hkr_code(texts, "hkr/", "tist")
            if setting is not None and setting.celsius is not None:
                self.point("temperature_c", setting.celsius)
        setting = self._hkr_code(texts, "hkr/", "tsoll")
        if setting is not None:
            mode = setting.mode
            self.state("thermostat_mode", mode.label, float(mode.value))
            if setting.celsius is not None:
                self.point("setpoint_c", setting.celsius, ("kind", "target"))
        for tag, kind in _SETPOINTS:
            setting = self._hkr_code(texts, "hkr/", tag)
            if setting is not None and setting.celsius is not None:
                self.point("setpoint_c", setting.celsius, ("kind", kind))
        nextchange = el.find("nextchange")
        if nextchange is not None:
            setting = self._hkr_code(_texts(nextchange), "hkr/nextchange/", "tchange")
            if setting is not None and setting.celsius is not None:
                self.point("setpoint_c", setting.celsius, ("kind", "next"))
        raw = self.raw(texts, "hkr/", "errorcode")
        if raw is not None:
            error = nz.HkrError.from_code(raw)
            self.state("thermostat_error", error.label, float(raw))

    def _hkr_code(self, texts: _Texts, path: str, tag: str) -> nz.HkrSetting | None:
        raw = self.raw(texts, path, tag)
        return None if raw is None else self.convert(path + tag, raw, nz.hkr_setting)

    def _button(self, el: Element, texts: _Texts) -> None:
        raw = self.raw(texts, "button/", "lastpressedtimestamp")
        if raw is None:
            return
        pressed = self.convert("button/lastpressedtimestamp", raw, nz.epoch_time)
        if pressed is None:  # 0: never pressed / unknown (1.2.1)
            return
        ident = _ain(el.get("identifier") or "")
        name = (texts.get("name") or "").strip()
        self.state("button", "pressed", 1.0, time=pressed, device_id=ident, device=name)
