"""Pure parsers of Overkiz answers: setup, events, per-device states.

Cloud events carry every state value as a string typed by the state's data type; the local
API and ``/setup`` send typed JSON. Both are read by ``typed_value``. The spec shows the
``type`` field of a state without listing its values; the data types below are those real
setups use (../shared/fixtures/overkiz: 1, 2, 3, 5, 6, 10, 11) and the ones Home Assistant's
Overkiz client names: 0 none, 1 integer, 2 float, 3 string, 4 blob, 5 date (epoch ms, as in
``core:DerogationStartDateTimeState``), 6 boolean, 9 password, 10 JSON array, 11 JSON object.

One odd entry costs only itself: a state, a device or an event that cannot be read is a
problem (a ``ParseError`` naming the device and the state) beside everything else that was
read, never a failure of the whole answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from collector.errors import ParseError
from collector.normalise import warn_once

StateValue = int | float | str | bool | list[Any] | dict[str, Any]
T = TypeVar("T")

#: Data types whose values are never kept (type 9: a password, not even in error texts).
_WITHHELD = frozenset({0, 9})
_KNOWN_TYPES = frozenset({0, 1, 2, 3, 4, 5, 6, 9, 10, 11})


@dataclass(frozen=True, slots=True)
class State:
    name: str
    value: StateValue
    #: When the box last updated the state (``lastUpdateTime``, epoch ms), where the answer
    #: says so (device states); events carry their time on the event instead.
    updated_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Device:
    url: str
    label: str
    room: str | None
    model: str
    attributes: Mapping[str, str]
    states: tuple[State, ...]
    #: The setup's ``available``: False for a device the box cannot reach.
    available: bool = True

    @property
    def base_url(self) -> str:
        return self.url.split("#", 1)[0]


@dataclass(frozen=True, slots=True)
class StateChange:
    device_url: str
    time_ms: int | None
    states: tuple[State, ...]


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    """What could be read of an answer, and one ``ParseError`` per entry that could not."""

    items: tuple[T, ...]
    problems: tuple[ParseError, ...] = ()


def _finite(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(raw)
    number = float(raw)
    if not math.isfinite(number):
        raise ValueError(raw)
    return number


def typed_value(data_type: object, raw: object, *, part: str) -> StateValue | None:
    """A state value typed by its data type; None where there is no value to keep (type 0,
    a password). A value that is not of its type is a ParseError naming ``part``; a data
    type nobody documents is read as the JSON it came as (and logged once)."""
    if data_type in _WITHHELD or raw is None:
        return None
    try:
        if data_type == 1:
            number = _finite(raw)
            return int(number) if number.is_integer() else number
        if data_type == 2:
            return _finite(raw)
        if data_type in (3, 4):  # a string; a blob comes as its text
            if not isinstance(raw, str):
                raise ValueError(raw)
            return raw
        if data_type == 5:  # a date: epoch ms (a number, or its text in cloud events)
            if isinstance(raw, str) and not raw.strip().lstrip("-").isdigit():
                return raw  # a date as text: kept as text, never collected as a number
            return int(_finite(raw))
        if data_type == 6:
            if isinstance(raw, bool):
                return raw
            if raw in ("true", "false"):
                return raw == "true"
            raise ValueError(raw)
        if data_type in (10, 11):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, (list, dict)):
                raise ValueError(raw)
            return value
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        text = str(raw)[:40]
        raise ParseError(f"state value {text!r} is not of type {data_type}", part=part) from exc
    if data_type not in _KNOWN_TYPES:
        warn_once("Overkiz", "state data type", repr(data_type)[:20])
    if isinstance(raw, (bool, int, float, str, list, dict)):
        return raw
    raise ParseError(f"state value of type {data_type!r} is not JSON", part=part)


def _updated(item: Mapping[str, Any]) -> int | None:
    stamp = item.get("lastUpdateTime")
    if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 253_402_300_800_000:
        return stamp
    return None


def _states(raw: object, part: str, problems: list[ParseError]) -> tuple[State, ...]:
    """The states of one device or event; each that cannot be read is a problem of its own."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(ParseError("states is not a list", part=part))
        return ()
    out: list[State] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(ParseError("state without a name", part=f"{part}[{index}]"))
            continue
        try:
            value = typed_value(item.get("type"), item.get("value"), part=f"{part} {item['name']}")
        except ParseError as exc:
            problems.append(exc)
            continue
        if value is not None:
            out.append(State(item["name"], value, _updated(item)))
    return tuple(out)


def _rooms(place: object, out: dict[str, str], depth: int = 0) -> None:
    """Every place's label by its oid. "The house, floors and rooms are viewed as a place"
    (setup, <place>): a device's room is the label of its own place, as the user named it,
    whether that is a room of the house, a room on a floor or the house itself."""
    if not isinstance(place, dict) or depth > 32:
        return
    if isinstance(place.get("oid"), str) and isinstance(place.get("label"), str):
        out[place["oid"]] = place["label"]
    for sub in _subplaces(place):
        _rooms(sub, out, depth + 1)


def _subplaces(place: dict[str, Any]) -> list[dict[str, Any]]:
    subs = place.get("subPlaces")
    return [s for s in subs if isinstance(s, dict)] if isinstance(subs, list) else []


def parse_setup(doc: object) -> Parsed[Device]:
    """Devices of a ``/setup`` answer (or the list of ``/setup/devices``).

    The answer as a whole must hold a device list (else ParseError); a device without a
    deviceURL, and a state that cannot be read, are problems beside the other devices."""
    rooms: dict[str, str] = {}
    if isinstance(doc, dict):
        _rooms(doc.get("rootPlace"), rooms)
        devices = doc.get("devices")
    else:
        devices = doc
    if not isinstance(devices, list):
        raise ParseError("setup without a device list", part="devices")
    out: list[Device] = []
    problems: list[ParseError] = []
    for index, item in enumerate(devices):
        if not isinstance(item, dict) or not isinstance(item.get("deviceURL"), str):
            problems.append(ParseError("device without a deviceURL", part=f"devices[{index}]"))
            continue
        url: str = item["deviceURL"]
        attributes: dict[str, str] = {}
        raw_attributes = item.get("attributes")
        for attr in raw_attributes if isinstance(raw_attributes, list) else []:
            if (
                isinstance(attr, dict)
                and isinstance(attr.get("name"), str)
                and isinstance(attr.get("value"), str)
            ):
                attributes[attr["name"]] = attr["value"]
        label = item.get("label")
        model = item.get("controllableName") or item.get("widget") or ""
        place = item.get("placeOID")
        out.append(
            Device(
                url=url,
                label=label if isinstance(label, str) else url,
                room=rooms.get(place) if isinstance(place, str) else None,
                model=model if isinstance(model, str) else "",
                attributes=attributes,
                states=_states(item.get("states"), f"{url} states", problems),
                available=item.get("available") is not False,
            )
        )
    return Parsed(tuple(out), tuple(problems))


def parse_events(doc: object) -> Parsed[StateChange]:
    """The ``DeviceStateChangedEvent`` entries of an events fetch; other events are skipped.
    An event or a state that cannot be read is a problem beside the others."""
    if doc is None:
        return Parsed(())
    if not isinstance(doc, list):
        raise ParseError("events answer is not a list", part="events")
    out: list[StateChange] = []
    problems: list[ParseError] = []
    for index, event in enumerate(doc):
        part = f"events[{index}]"
        if not isinstance(event, dict):
            problems.append(ParseError("event is not an object", part=part))
            continue
        if event.get("name") != "DeviceStateChangedEvent":
            continue
        url = event.get("deviceURL")
        if not isinstance(url, str):
            problems.append(ParseError("state change without a deviceURL", part=part))
            continue
        stamp = event.get("timestamp")
        time_ms = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None
        states = _states(event.get("deviceStates"), f"{url} event", problems)
        out.append(StateChange(url, time_ms, states))
    return Parsed(tuple(out), tuple(problems))


def parse_states(doc: object, device_url: str = "states") -> Parsed[State]:
    """The answer of ``/setup/devices/{deviceURL}/states`` ("GET Device states": name, type,
    value and ``lastUpdateTime`` of each state)."""
    if doc is not None and not isinstance(doc, list):
        raise ParseError("device states answer is not a list", part=device_url)
    problems: list[ParseError] = []
    states = _states(doc, f"{device_url} states", problems)
    return Parsed(states, tuple(problems))


def parse_timezone(doc: object) -> str | None:
    """The setup's time zone name (``location.timezone`` of "GET Setup"), if it names one."""
    location = doc.get("location") if isinstance(doc, dict) else None
    zone = location.get("timezone") if isinstance(location, dict) else None
    return zone if isinstance(zone, str) and zone else None
