"""Pure parser of ``getdevicelistinfos`` (AHA-HTTP-Interface 1.2.1): bytes -> devices and
readings. No I/O here; every unit conversion lives in :mod:`.normalise`, the function-group
table and the records handed out in :mod:`.parse_tables`.

Decisions, in one place:

* ``device_id`` is the AIN without spaces (HAN-FUN units keep their ``-1`` suffix, groups
  their ``65:3A:18-900`` form). Group readings carry ``scope = group``.
* Temperature comes from ``<temperature><celsius>`` (0.1 °C, offset already applied).
  ``<hkr><tist>`` is the same sensor in 0.5 °C steps and is used only when ``<celsius>``
  gives no value (no ``<temperature>`` group, or an empty, "inval" or bad ``<celsius>``, as
  older thermostats send), so there is never a second series of the same quantity. A
  ``<tist>`` code outside 16..56 is what the device sent (code / 2) while that is a
  plausible room temperature, else no point; never clamped (``normalise.tist_celsius``).
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

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

from collector.errors import ParseError
from collector.model import Reading
from collector.sources.fritzbox import normalise as nz
from collector.sources.fritzbox.parse_stats import (
    SOURCE,
    Element,
    load_document,
    parse_devicestats,
    to_utc,
)
from collector.sources.fritzbox.parse_tables import (
    _BUTTON,
    _HKR_CODES,
    _HKR_ERRORS,
    _PRESENT,
    _SETPOINTS,
    _STATS_FUNCTIONS,
    _SWITCH_MODES,
    _THERMOSTAT_MODES,
    _WINDOW,
    DeviceInfo,
    DeviceList,
    Stats,
    _ain,
    _device_info,
    _Extra,
    _Group,
    _group,
    _Key,
    _reading,
    _Static,
    _static,
    _Texts,
)

__all__ = ["DeviceInfo", "DeviceList", "Stats", "parse_devicelist", "parse_devicestats"]

_T = TypeVar("_T")
#: DeviceInfos kept per device (its name, presence or function groups changed)
_MAX_INFOS = 16


# --------------------------------------------------------------------------- the parser


def parse_devicelist(xml: bytes, *, site: str, time: datetime) -> DeviceList:
    """Devices and readings of one ``getdevicelistinfos`` answer, polled at ``time``."""
    root = load_document(xml, "devicelist")
    out = _Out(site, to_utc(time), [], [])
    devices: list[DeviceInfo] = []
    members_of: dict[str, str] = {}  # internal id -> device_id, for resolving group members
    groups: list[tuple[int, str | None]] = []  # their members are known at the end
    for el in root:
        tag = el.tag
        if tag != "device" and tag != "group":  # noqa: PLR1714 (a set per element is slower)
            continue
        static = _static(el, tag)
        if static.member_id is not None:
            # The first device wins when the box repeats an id (seen in real lists).
            members_of.setdefault(static.member_id, static.device_id)
        info = _Device(el, static, out).read()
        if info is not None:
            if info.is_group:
                groups.append((len(devices), el.findtext("groupinfo/members")))
            devices.append(info)
    for i, members in groups:
        devices[i] = dataclasses.replace(devices[i], members=_members(members, members_of))
    return DeviceList(tuple(devices), tuple(out.readings), tuple(out.problems))


class _Out(NamedTuple):
    """What all devices of one list share."""

    site: str
    time: datetime
    readings: list[Reading]
    problems: list[ParseError]


def _members(text: str | None, members_of: dict[str, str]) -> tuple[str, ...]:
    """The device_ids of a group's members (``<groupinfo><members>``, internal ids)."""
    ids = (i.strip() for i in (text or "").split(","))
    return tuple(members_of[i] for i in ids if i in members_of)


def _texts(el: Element) -> _Texts:
    """Child tag -> text of an element: one pass instead of a search per value."""
    return {c.tag: c.text for c in el}


class _Device:
    """Reads one <device>/<group> element into a DeviceInfo (without the members of a
    group) and its readings.

    This runs for every value of every poll, so the common case (a value that is there
    and valid) is kept to a few dict lookups and the fields of the reading: the tables
    of :mod:`.parse_tables` stand in for the normaliser for documented texts, the tags
    of a point come from a table per model, what the attributes say is read once per
    device (``_Static``), and the element path of a problem is only put together when
    there is one.
    """

    __slots__ = ("device", "device_id", "el", "out", "seen", "static", "tag_sets", "unit")

    def __init__(self, el: Element, static: _Static, out: _Out) -> None:
        self.el = el
        self.out = out
        self.static = static
        self.device_id = static.device_id
        self.device = static.device_id  # its name, once read
        self.tag_sets = static.tag_sets
        #: the points so far; buttons are keyed by their own device_id instead of "state"
        self.seen: set[_Key] = set()
        self.unit: nz.HanFunUnitType | None = None

    # -- plumbing -------------------------------------------------------------------

    def problem(self, path: str, message: str) -> None:
        self.out.problems.append(ParseError(message, part=f"{self.static.where}/{path}"))

    def raw(self, texts: _Texts, path: str, tag: str) -> int | None:
        try:
            return nz.raw_int(texts.get(tag))
        except ValueError as err:
            self.problem(path + tag, str(err))
            return None

    def convert(self, path: str, raw: int, fn: Callable[[int], _T]) -> _T | None:
        try:
            return fn(raw)
        except ValueError as err:
            self.problem(path, str(err))
            return None

    def value(self, texts: _Texts, path: str, tag: str, fn: Callable[[int], _T]) -> _T | None:
        """``fn`` of an element's integer; None when the element is missing, unknown or
        bad (reported)."""
        raw = self.raw(texts, path, tag)
        return None if raw is None else self.convert(path + tag, raw, fn)

    def point(self, measurement: str, value: float, extra: _Extra = None,
              label: str | None = None) -> None:  # fmt: skip
        key = (measurement, extra)
        if key in self.seen:  # e.g. <battery> both on the device and in <hkr>
            return
        self.seen.add(key)
        out = self.out
        out.readings.append(_reading((measurement, value, out.time, SOURCE, out.site,
                                      self.device_id, self.device, self.tag_sets[extra],
                                      label)))  # fmt: skip

    def values(self, top: _Texts, groups: list[tuple[_Group, Element]]) -> None:
        """The device's own elements, then each function group in document order: its 0/1
        and numeric elements (most of the readings: what ``value`` and ``point`` do,
        written out), then what else it has (``_Group.special``)."""
        seen, tag_sets = self.seen, self.tag_sets
        site, time, readings, _ = self.out
        device_id, device = self.device_id, self.device
        new, cls = tuple.__new__, Reading  # _reading without the partial's call
        texts = top
        for group, child in ((_OWN, None), *groups):
            if child is not None:
                texts = {c.tag: c.text for c in child}
            get = texts.get
            for tag, key, labels, known in group.flags:
                text = get(tag)
                if text is None:
                    continue
                if (hit := known.get(text)) is not None:
                    value, label = hit
                else:
                    try:
                        raw = nz.raw_int(text)
                        if raw is None:
                            continue
                        value, label = float(raw), labels[nz.flag(raw)]
                    except ValueError as err:
                        self.problem(group.path + tag, str(err))
                        continue
                if key not in seen:
                    seen.add(key)
                    readings.append(new(cls, ("state", value, time, SOURCE, site, device_id,
                                              device, tag_sets[key[1]], label)))  # fmt: skip
            for tag, key, fn in group.numbers:
                text = get(tag)
                if text is None:
                    continue
                try:
                    # nz.raw_int's common case (plain digits) inline: most values take it
                    if text.isdigit() and text.isascii() and len(text) <= nz.MAX_DIGITS:
                        value = fn(int(text))
                    elif (raw := nz.raw_int(text)) is None:
                        continue
                    else:
                        value = fn(raw)
                except ValueError as err:
                    self.problem(group.path + tag, str(err))
                    continue
                if key not in seen:
                    seen.add(key)
                    readings.append(new(cls, (key[0], value, time, SOURCE, site, device_id,
                                              device, tag_sets[None], None)))  # fmt: skip
            if child is not None and group.special is not None:
                group.special(self, child, texts, top)

    # -- the device -----------------------------------------------------------------

    def read(self) -> DeviceInfo | None:
        static = self.static
        if not self.device_id:
            self.problem("@identifier", "device without identifier skipped")
            return None
        top: _Texts = {}
        groups: list[tuple[_Group, Element]] = []  # function groups, in document order
        for child in self.el:
            tag = child.tag
            top[tag] = child.text
            if (group := _GROUPS.get(tag)) is not None:
                groups.append((group, child))
        name = (top.get("name") or "").strip()
        self.device = name or self.device_id  # DeviceInfo.device_tag
        if static.bitmask_problem is not None:
            self.problem("@functionbitmask", static.bitmask_problem)
        if "etsiunitinfo" in top:
            self.unit = self._unit_type()
        present = self._present(top)
        if present is not False:
            self.values(top, groups)
        stats = (_STATS_FUNCTIONS[0] in top, _STATS_FUNCTIONS[1] in top,
                 _STATS_FUNCTIONS[2] in top)  # fmt: skip
        key = (name, present, stats, self.unit)
        info = static.infos.get(key)
        if info is None:
            # DeviceInfo is immutable and a device's rarely changes between polls: the one
            # of an earlier poll is handed out again instead of building a new one.
            if len(static.infos) >= _MAX_INFOS:
                static.infos.clear()
            info = static.infos[key] = _device_info(
                self.device_id, static.internal_id, name, static.model, static.manufacturer,
                static.fwversion, static.functionbitmask, present, static.is_group, stats,
                self.unit)  # fmt: skip
        return info

    def _unit_type(self) -> nz.HanFunUnitType | None:
        info = self.el.find("etsiunitinfo")
        if info is None:
            return None
        return self.value(_texts(info), "etsiunitinfo/", "unittype", nz.HanFunUnitType.from_code)

    def _present(self, top: _Texts) -> bool | None:
        present = _PRESENT.get(top.get("present") or "")
        if present is None and (present := self.value(top, "", "present", nz.flag)) is None:
            return None
        label = "present" if present else "absent"
        self.point("state", float(present), ("name", "present"), label)
        return present

    # -- function groups beyond their 0/1 and numeric elements -----------------------

    def _switch(self, el: Element, texts: _Texts, top: _Texts) -> None:
        self._mode(texts, ("name", "switch_mode"))

    def _blind(self, el: Element, texts: _Texts, top: _Texts) -> None:
        self._mode(texts, ("name", "blind_mode"))

    def _mode(self, texts: _Texts, extra: _Extra) -> None:
        text = texts.get("mode")
        if (hit := _SWITCH_MODES.get(text or "")) is not None:
            self.point("state", hit[0], extra, hit[1])
        elif not nz.is_unknown(text):
            mode = nz.SwitchMode.from_text(text or "")
            if mode is not nz.SwitchMode.UNKNOWN:
                self.point("state", float(mode.value), extra, mode.label)

    def _alert(self, el: Element, texts: _Texts, top: _Texts) -> None:
        raw = self.raw(texts, "alert/", "state")
        if raw is None:
            return
        if raw < 0:
            self.problem("alert/state", f"negative alert state: {raw}")
            return
        unit = self.unit
        labels = _WINDOW if unit is not None and unit.is_contact else ("clear", "alert")
        self.point("state", float(raw), ("name", "alert"), labels[raw != 0])

    def _level(self, el: Element, texts: _Texts, top: _Texts) -> None:
        raw = self.raw(texts, "levelcontrol/", "levelpercentage")
        if raw is not None:
            value = self.convert("levelcontrol/levelpercentage", raw, nz.percent)
        elif (raw := self.raw(texts, "levelcontrol/", "level")) is not None:
            value = self.convert("levelcontrol/level", raw, nz.percent_from_level)
        else:
            return
        if value is not None:
            self.point("level_pct", value, ("kind", "blind" if "blind" in top else "level"))

    def _hkr(self, el: Element, texts: _Texts, top: _Texts) -> None:
        # <tist> only when <celsius> gave no value (see the module docstring)
        if ("temperature_c", None) not in self.seen:
            celsius = self.value(texts, "hkr/", "tist", nz.tist_celsius)
            if celsius is not None:
                self.point("temperature_c", celsius)
        setting = self._hkr_code(texts, "hkr/", "tsoll")
        if setting is not None:
            value, label = _THERMOSTAT_MODES[setting.mode]
            self.point("state", value, ("name", "thermostat_mode"), label)
            if setting.celsius is not None:
                self.point("setpoint_c", setting.celsius, ("kind", "target"))
        for tag, extra in _SETPOINTS:
            setting = self._hkr_code(texts, "hkr/", tag)
            if setting is not None and setting.celsius is not None:
                self.point("setpoint_c", setting.celsius, extra)
        nextchange = el.find("nextchange") if "nextchange" in texts else None
        if nextchange is not None:
            setting = self._hkr_code(_texts(nextchange), "hkr/nextchange/", "tchange")
            if setting is not None and setting.celsius is not None:
                self.point("setpoint_c", setting.celsius, ("kind", "next"))
        if (error := _HKR_ERRORS.get(texts.get("errorcode") or "")) is not None:
            self.point("state", error[0], ("name", "thermostat_error"), error[1])
        elif (raw := self.raw(texts, "hkr/", "errorcode")) is not None:
            label = nz.HkrError.from_code(raw).label
            self.point("state", float(raw), ("name", "thermostat_error"), label)

    def _hkr_code(self, texts: _Texts, path: str, tag: str) -> nz.HkrSetting | None:
        text = texts.get(tag)
        if text in _HKR_CODES:
            return _HKR_CODES[text]
        return self.value(texts, path, tag, nz.hkr_setting)

    def _button(self, el: Element, texts: _Texts, top: _Texts) -> None:
        pressed = self.value(texts, "button/", "lastpressedtimestamp", nz.epoch_time)
        if pressed is None:  # 0: never pressed / unknown (1.2.1)
            return
        # The button's own AIN and name, falling back to the device's.
        ident = _ain(el.get("identifier") or "") or self.device_id
        key = (ident, _BUTTON)
        if key in self.seen:
            return
        self.seen.add(key)
        name = (texts.get("name") or "").strip() or self.device
        self.out.readings.append(_reading(("state", 1.0, pressed, SOURCE, self.out.site, ident,
                                           name, self.tag_sets[_BUTTON], "pressed")))  # fmt: skip


#: the device's own 0/1 and numeric elements
_OWN = _group("")

#: function groups with readings
_GROUPS: dict[object, _Group] = {
    "switch": _group("switch", _Device._switch),
    "simpleonoff": _group("simpleonoff"),
    "powermeter": _group("powermeter"),
    "temperature": _group("temperature"),
    "humidity": _group("humidity"),
    "hkr": _group("hkr", _Device._hkr),
    "blind": _group("blind", _Device._blind),
    "alert": _group("alert", _Device._alert),
    "levelcontrol": _group("levelcontrol", _Device._level),
    "button": _group("button", _Device._button),
}
