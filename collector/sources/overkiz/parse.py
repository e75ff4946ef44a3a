"""Pure parsers of Overkiz answers: setup, events, per-device states.

Cloud events carry every state value as a string typed by the state's data type (spec:
"DataType": 0 none, 1 integer, 2 float, 3 string, 6 boolean, 10 JSON array, 11 JSON object);
the local API and ``/setup`` send typed JSON. Both are read by ``typed_value``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.errors import ParseError

StateValue = int | float | str | bool | list[Any] | dict[str, Any]


@dataclass(frozen=True, slots=True)
class State:
    name: str
    value: StateValue


@dataclass(frozen=True, slots=True)
class Device:
    url: str
    label: str
    room: str | None
    model: str
    attributes: Mapping[str, str]
    states: tuple[State, ...]

    @property
    def base_url(self) -> str:
        return self.url.split("#", 1)[0]


@dataclass(frozen=True, slots=True)
class StateChange:
    device_url: str
    time_ms: int | None
    states: tuple[State, ...]


def typed_value(data_type: object, raw: object, *, part: str) -> StateValue | None:
    """A state value typed by its data type; None for type 0 (no value). ParseError otherwise."""
    if data_type == 0 or raw is None:
        return None
    try:
        if data_type == 1:
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise ValueError(raw)
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return int(number) if number.is_integer() else number
        if data_type == 2:
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise ValueError(raw)
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return number
        if data_type == 3:
            if not isinstance(raw, str):
                raise ValueError(raw)
            return raw
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
    except (ValueError, TypeError, RecursionError) as exc:
        text = str(raw)[:40]
        raise ParseError(f"state value {text!r} is not of type {data_type}", part=part) from exc
    raise ParseError(f"unknown state data type {data_type!r}", part=part)


def _states(raw: object, part: str) -> tuple[State, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ParseError("states is not a list", part=part)
    out: list[State] = []
    for index, item in enumerate(raw):
        where = f"{part}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ParseError("state without a name", part=where)
        value = typed_value(item.get("type"), item.get("value"), part=f"{where} {item['name']}")
        if value is not None:
            out.append(State(item["name"], value))
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


def parse_setup(doc: object) -> tuple[Device, ...]:
    """Devices of a ``/setup`` answer (or the list of ``/setup/devices``)."""
    rooms: dict[str, str] = {}
    if isinstance(doc, dict):
        _rooms(doc.get("rootPlace"), rooms)
        devices = doc.get("devices")
    else:
        devices = doc
    if not isinstance(devices, list):
        raise ParseError("setup without a device list", part="devices")
    out: list[Device] = []
    for index, item in enumerate(devices):
        part = f"devices[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("deviceURL"), str):
            raise ParseError("device without a deviceURL", part=part)
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
                url=item["deviceURL"],
                label=label if isinstance(label, str) else item["deviceURL"],
                room=rooms.get(place) if isinstance(place, str) else None,
                model=model if isinstance(model, str) else "",
                attributes=attributes,
                states=_states(item.get("states"), f"{part}.states"),
            )
        )
    return tuple(out)


def parse_events(doc: object) -> tuple[StateChange, ...]:
    """The ``DeviceStateChangedEvent`` entries of an events fetch; other events are skipped."""
    if doc is None:
        return ()
    if not isinstance(doc, list):
        raise ParseError("events answer is not a list", part="events")
    out: list[StateChange] = []
    for index, event in enumerate(doc):
        part = f"events[{index}]"
        if not isinstance(event, dict):
            raise ParseError("event is not an object", part=part)
        if event.get("name") != "DeviceStateChangedEvent":
            continue
        url = event.get("deviceURL")
        if not isinstance(url, str):
            raise ParseError("state change without a deviceURL", part=part)
        stamp = event.get("timestamp")
        time_ms = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None
        out.append(StateChange(url, time_ms, _states(event.get("deviceStates"), part)))
    return tuple(out)


def parse_states(doc: object) -> tuple[State, ...]:
    """The answer of ``/setup/devices/{deviceURL}/states``."""
    return _states(doc, "states")


def parse_timezone(doc: object) -> str | None:
    """The setup's time zone name (``location.timezone`` of "GET Setup"), if it names one."""
    location = doc.get("location") if isinstance(doc, dict) else None
    zone = location.get("timezone") if isinstance(location, dict) else None
    return zone if isinstance(zone, str) and zone else None
