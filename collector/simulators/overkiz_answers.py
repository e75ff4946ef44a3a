"""The answers of the simulated Overkiz service that depend only on the house and the time.

Shapes after overkiz-enduser-rest-api.txt: the setup and device objects ("GET Setup",
"GET Devices"), device states, DeviceStateChangedEvent, the history values of "GET History
values" and its daily/monthly forms, and "POST Devices growing index variations".
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from collector.simulators import overkiz_limits as errors
from collector.simulators._http import Request, Response
from collector.simulators.overkiz_house import (
    BOOL,
    DAY_S,
    HOUR_S,
    TICK_S,
    UNIT_ATTRIBUTE,
    Device,
    House,
    State,
    state_unit_attribute,
)

MAX_SPAN_MS = 3 * DAY_S * 1000  # "Max history query span is limited to 3 days if limit ..."


class SpanTooLong(ValueError):
    """A raw history window over the documented maximum."""


def changes(house: House, tick: int, local: bool) -> list[dict[str, Any]]:
    out = []
    for device in house.devices:
        changed = [s for s in device.states if s.value(tick) != s.value(tick - TICK_S)]
        if not changed:
            continue
        event: dict[str, Any] = {
            "deviceURL": device.url,
            "deviceStates": [
                {
                    "name": s.name,
                    "type": s.type,
                    "value": s.value(tick) if local else _as_text(s.value(tick), s.type),
                }
                for s in changed
            ],
            "name": "DeviceStateChangedEvent",
        }
        if not local:  # cloud events carry their own time and the setup id
            event = {"timestamp": tick * 1000, "setupOID": house.root.oid, **event}
        out.append(event)
    return out


def setup(house: House, now: float) -> dict[str, Any]:
    return {
        "creationTime": 1672531200000,
        "lastUpdateTime": int(now * 1000),
        "id": f"SETUP-{house.gateway}",
        "oid": house.root.oid,
        "location": {"city": "Lyon", "country": "FR", "timezone": "Europe/Paris"},
        "gateways": gateways(house),
        "devices": [device_json(d, now) for d in house.devices],
        "zones": [],
        "resellerDelegationType": "NEVER",
        "rootPlace": house.root.json(),
        "features": [],
    }


def gateways(house: House) -> list[dict[str, Any]]:
    return [
        {
            "gatewayId": house.gateway,
            "type": 98,
            "subType": 1,
            "placeOID": house.root.oid,
            "alive": True,
            "timeReliable": True,
            "connectivity": {"status": "OK", "protocolVersion": "2024.6.4"},
            "mode": "ACTIVE",
            "functions": "INTERNET_AUTHORIZATION,SCENARIO_DOWNLOAD",
        }
    ]


def device_json(device: Device, now: float) -> dict[str, Any]:
    attributes = []
    if device.unit:
        attributes.append({"name": UNIT_ATTRIBUTE, "type": 3, "value": device.unit})
    attributes += [
        {"name": state_unit_attribute(s.name), "type": 3, "value": s.unit}
        for s in device.states
        if s.unit
    ]
    return {
        "creationTime": 1672531200000,
        "lastUpdateTime": 1672531200000,
        "label": device.label,
        "deviceURL": device.url,
        "shortcut": False,
        "controllableName": device.controllable,
        "definition": {
            "commands": [],
            "widgetName": device.widget,
            "uiClass": device.ui_class,
            "qualifiedName": device.controllable,
            "type": "ACTUATOR" if device.type == 1 else "SENSOR",
            "states": [{"type": "DataState", "qualifiedName": s.name} for s in device.states],
            "dataProperties": [],
        },
        "states": [state_json(s, now) for s in device.states],
        "attributes": attributes,
        "available": True,
        "enabled": True,
        "placeOID": device.place,
        "widget": device.widget,
        "type": device.type,
        "oid": str(uuid4(random.Random(device.url))),
        "uiClass": device.ui_class,
    }


def with_device(house: House, url: str, render: Callable[[Device], object]) -> Response:
    device = house.by_url.get(url)
    return json_response(render(device)) if device else errors.no_such_device(url)


def one_state(house: House, url: str, name: str, now: float) -> Response:
    device = house.by_url.get(url)
    state = device.state(name) if device else None
    return json_response(state_json(state, now)) if state else errors.no_such_device(url)


def history(
    house: House,
    request: Request,
    url: str,
    name: str | None,
    kind: str,
    bounds: list[str],
    now: float,
) -> Response:
    """One state's history, or (``name`` None) the list of every historised state's, in the
    device's state order (the spec's "States History values" entries carry no state name)."""
    device = house.by_url.get(url)
    if device is None:
        return errors.no_such_device(url)
    try:
        start, end = int(bounds[0]), int(bounds[1])
        limit = int(request.query["limit"]) if "limit" in request.query else None
    except ValueError:
        return errors.bad_parameters("from, to and limit are epoch milliseconds")
    if start > end:
        return errors.bad_parameters("from is after to")
    if kind == "raw" and limit is None and end - start > MAX_SPAN_MS:
        raise SpanTooLong(f"{end - start} ms")
    if name is None:
        states = [s for s in device.states if s.historised]
        return json_response(
            [_history(house, device, s, kind, start, end, limit, now) for s in states]
        )
    state = device.state(name)
    return json_response(_history(house, device, state, kind, start, end, limit, now))


def _history(
    house: House,
    device: Device,
    state: State | None,
    kind: str,
    start: int,
    end: int,
    limit: int | None,
    now: float,
) -> dict[str, Any]:
    values: list[dict[str, Any]] = []
    if state is not None and state.historised:
        if kind == "raw":
            values = [_point(state, [h], h) for h in house.history_hours(now, start, end)]
        else:
            periods = house.periods(now, start, end, monthly=kind == "monthly")
            values = [_period(state, a, b, now) for a, b in periods]
    body: dict[str, Any] = {
        "historyValues": values[:limit] if limit is not None else values,
        "historizationMethod": 2 if state is not None and state.growing else 1,
    }
    if state is not None and device.unit_of(state):
        body["deviceUnit"] = device.unit_of(state)
    return body


def _period(state: State, start: int, end: int, now: float) -> dict[str, Any]:
    hours = list(range(start, min(end - 1, int(now)) + 1, HOUR_S))  # [start, end)
    if state.growing:  # a growing index: what the period added
        first, last = state.value(start), state.value(min(end, now))
        assert isinstance(first, int | float) and isinstance(last, int | float)
        value = round(last - first, 3)
        return {
            "value": str(value),
            "min": first,
            "max": last,
            "samples": len(hours),
            "when": start * 1000,
        }
    return _point(state, hours, start)


def growing(house: House, request: Request, now: float) -> Response:
    try:
        asked = json.loads(request.body or b"[]")
        out = []
        for item in asked:
            device = house.by_url.get(item["deviceUrl"])
            if device is None:
                return errors.no_such_device(str(item["deviceUrl"]))
            state = device.state(item["stateName"])
            if state is None or not state.growing:
                return errors.bad_parameters(f"{item['stateName']} is not a growing index")
            first = state.value(min(item["from"] / 1000, now))
            last = state.value(min(item["to"] / 1000, now))
            assert isinstance(first, int | float) and isinstance(last, int | float)
            out.append(
                {"deviceUrl": device.url, "stateName": state.name, "delta": round(last - first, 3)}
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        return errors.bad_parameters("Malformed devices growing index variation requests")
    return json_response(out)


def _point(state: State, hours: list[int], when: int) -> dict[str, Any]:
    numbers = [v for v in (state.value(h) for h in hours) if isinstance(v, int | float)]
    if not numbers:
        return {"value": None, "min": None, "max": None, "samples": 0, "when": when * 1000}
    mean = numbers[0] if len(numbers) == 1 else round(sum(numbers) / len(numbers), 3)
    return {
        "value": str(mean),
        "min": min(numbers),
        "max": max(numbers),
        "samples": len(numbers),
        "when": when * 1000,
    }


def state_json(state: State, now: float) -> dict[str, Any]:
    return {
        "name": state.name,
        "type": state.type,
        "value": state.value(now),
        "lastUpdateTime": tick(now) * 1000,
    }


def _as_text(value: object, type_: int) -> str:
    """Cloud event values are strings whatever the state's type (fixtures/overkiz/events)."""
    if type_ == BOOL:
        return "true" if value else "false"
    return str(value)


def tick(now: float) -> int:
    return int(now // TICK_S) * TICK_S


def uuid4(rng: random.Random) -> str:

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def json_response(data: object) -> Response:
    return Response(200, json.dumps(data).encode(), "application/json")
