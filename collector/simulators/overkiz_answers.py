"""The answers of the simulated Overkiz service that depend only on the site and the time.

Shapes after overkiz-enduser-rest-api.txt: the setup, location, gateway and device objects
("GET Setup", "GET Location", "GET Devices"), device states ("GET Device states": each with its
``lastUpdateTime``), DeviceStateChangedEvent, the history values of "GET History values" and its
daily/monthly forms, and "POST Devices growing index variations". The local API's shapes follow
a recorded local ``/setup`` (shared/fixtures/overkiz/setup/setup_local_with_climate.json): only
``gateways`` and ``devices``; devices without place, oid or widget but with ``synced`` and
``subsystemId``; no unit attributes at all; states without ``lastUpdateTime``.

Guesses, where neither the spec nor a capture says:
- a history answer's ``deviceUnit`` is the device's ``core:MeasuredValueType``, whatever the
  state asked for (the name says "device"); absent where the device has none;
- with ``limit`` set and more values in the window than the limit, the OLDEST values come back,
  in time order (the spec only says "Maximum number of values to retrieve");
- the values of a blob (4) and a password (9) state: a base64 text and a masked text.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from collector.simulators import overkiz_limits as errors
from collector.simulators._http import Request, Response
from collector.simulators.overkiz_model import (
    BOOL,
    HOUR_S,
    NUMBERS,
    TICK_S,
    UNIT_ATTRIBUTE,
    Device,
    Site,
    State,
    state_unit_attribute,
)

MAX_SPAN_MS = 3 * 86400 * 1000  # "Max history query span is limited to 3 days if limit ..."
CREATED_MS = 1672531200000  # when the simulated account, its places and devices were made


class SpanTooLong(ValueError):
    """A raw history window over the documented maximum without ``limit``."""


def changes(site: Site, tick: int, local: bool) -> list[dict[str, Any]]:
    """The DeviceStateChangedEvents of one tick. A device that stopped reporting sends none."""
    out = []
    for device in site.devices:
        if device.silent_since is not None and tick >= device.silent_since:
            continue
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
            event = {"timestamp": tick * 1000, "setupOID": site.setup_oid, **event}
        out.append(event)
    return out


def setup(site: Site, now: float, local: bool) -> dict[str, Any]:
    if site.raw is not None:
        return site.raw  # a recorded setup, served as recorded
    devices = [device_json(site, d, now, local) for d in site.devices]
    if local:  # the local API's /setup has these two keys only
        return {"gateways": gateways(site, local), "devices": devices}
    assert site.root is not None
    # "GET Setup": every field of the documented answer that real setups send
    return {
        "creationTime": CREATED_MS,
        "lastUpdateTime": CREATED_MS,
        "id": f"SETUP-{site.gateway}",
        "location": location(site),
        "gateways": gateways(site, local),
        "devices": devices,
        "zones": zones(site),
        "resellerDelegationType": "NEVER",
        "disconnectionConfiguration": {"targetPushSubscriptions": [], "notificationType": "PUSH"},
        "oid": site.setup_oid,
        "rootPlace": site.root.json(CREATED_MS),
        "features": [{"name": "tahoma-premium", "source": "GATEWAY_TYPE"}],
    }


def location(site: Site) -> dict[str, Any]:
    """"GET Location" (also the ``location`` of "GET Setup"): every documented field, and
    ``countryCode``, which real setups add."""
    if site.raw is not None:
        return dict(site.raw.get("location") or {})
    return {
        "creationTime": CREATED_MS,
        "lastUpdateTime": CREATED_MS + 86_400_000,
        "city": "Lyon",
        "country": "France",
        "postalCode": "69003",
        "addressLine1": "12 rue de la Gare",
        "addressLine2": "",
        "timezone": site.timezone,
        "longitude": 4.8598,
        "latitude": 45.7603,
        "twilightMode": 2,
        "twilightAngle": "CIVIL",
        "twilightCity": "lyon",
        "summerSolsticeDuskMinutes": 1290,
        "winterSolsticeDuskMinutes": 990,
        "twilightOffsetEnabled": False,
        "dawnOffset": 0,
        "duskOffset": 0,
        # the main meter's two tariffs: off-peak from 22:00, peak from 06:00
        "tariffSettings": {
            "tariffMode": "offPeakHours",
            "tariffs": [
                {"name": "tariff1", "startTime": "22:00"},
                {"name": "tariff2", "startTime": "06:00"},
            ],
        },
        "countryCode": "FR",
    }


def gateways(site: Site, local: bool) -> list[dict[str, Any]]:
    if site.raw is not None:
        return list(site.raw.get("gateways") or [])
    connectivity = {"status": "OK", "protocolVersion": "2024.6.4"}
    if local:
        return [{"connectivity": connectivity, "gatewayId": site.gateway}]
    assert site.root is not None
    return [
        {
            "gatewayId": site.gateway,
            "type": 98,
            "subType": 1,
            "placeOID": site.root.oid,
            "autoUpdateEnabled": True,
            "alive": True,
            "timeReliable": True,
            "connectivity": connectivity,
            "upToDate": True,
            "updateStatus": "UP_TO_DATE",
            "syncInProgress": False,
            "mode": "ACTIVE",
            "functions": "INTERNET_AUTHORIZATION,SCENARIO_DOWNLOAD,SCENARIO_AUTO_LAUNCHING",
        }
    ]


def zones(site: Site) -> list[dict[str, Any]]:
    """One zone: the heaters ("GET Setup", zones)."""
    heaters = [d for d in site.devices if d.ui_class == "HeatingSystem"]
    return [
        {
            "creationTime": CREATED_MS,
            "lastUpdateTime": CREATED_MS,
            "label": "Heating",
            "type": 0,
            "items": [
                {"itemType": "device", "deviceOID": device_oid(d), "deviceURL": d.url}
                for d in heaters
            ],
            "externalOID": "",
            "metadata": "",
            "oid": str(uuid.UUID(int=random.Random(f"zone-{site.setup_oid}").getrandbits(128),
                                 version=4)),
        }
    ]


def device_oid(device: Device) -> str:
    return str(uuid.UUID(int=random.Random(device.url).getrandbits(128), version=4))


def attributes(device: Device, local: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "core:Manufacturer", "type": 3, "value": device.manufacturer},
        {"name": "core:PowerSourceType", "type": 3, "value": device.power_source},
    ]
    if local:  # the local API sends no unit attribute at all
        return out
    if device.unit:
        out.append({"name": UNIT_ATTRIBUTE, "type": 3, "value": device.unit})
    out += [
        {"name": state_unit_attribute(s.name), "type": 3, "value": s.unit}
        for s in device.states
        if s.unit
    ]
    return out


def device_json(site: Site, device: Device, now: float, local: bool) -> dict[str, Any]:
    if device.raw is not None:
        return device.raw
    states = [state_json(site, device, s, now, local) for s in device.states]
    kind = "ACTUATOR" if device.type == 1 else "SENSOR"
    if local:
        names = [a["name"] for a in attributes(device, False)]
        return {
            "deviceURL": device.url,
            "available": device.available,
            "synced": True,
            "type": device.type,
            "states": states,
            "label": device.label,
            "subsystemId": int(device.url.partition("#")[2] or 0),
            "attributes": attributes(device, True),
            "enabled": True,
            "controllableName": device.controllable,
            "definition": {
                "states": [
                    {"name": s.name, "rawStateId": str(16_000_000 + 7 * i)}
                    for i, s in enumerate(device.states)
                ],
                "widgetName": device.widget,
                "attributes": [{"name": name} for name in names],
                "uiClass": device.ui_class,
                "commands": [],
                "type": kind,
            },
        }
    # "GET Devices" / the devices of "GET Setup"
    return {
        "creationTime": CREATED_MS,
        "lastUpdateTime": CREATED_MS,
        "label": device.label,
        "deviceURL": device.url,
        "shortcut": False,
        "controllableName": device.controllable,
        "definition": {
            "commands": [],
            "states": [{"type": "DataState", "qualifiedName": s.name} for s in device.states],
            "dataProperties": [],
            "widgetName": device.widget,
            "uiProfiles": [],
            "uiClass": device.ui_class,
            "qualifiedName": device.controllable,
            "type": kind,
        },
        "states": states,
        "attributes": attributes(device, False),
        "available": device.available,
        "enabled": True,
        "placeOID": device.place,
        "widget": device.widget,
        "type": device.type,
        "oid": device_oid(device),
        "uiClass": device.ui_class,
    }


def state_json(
    site: Site, device: Device, state: State, now: float, local: bool
) -> dict[str, Any]:
    """A state as "GET Device states" documents it; the local API's carry no time. The value
    is the one the state took at its last update (the box keeps what the device last
    reported), so a read and the event of that update agree."""
    last = device.last_update(state, now, site.installed)
    out: dict[str, Any] = {"name": state.name, "type": state.type, "value": state.value(last)}
    if not local:
        out["lastUpdateTime"] = int(last * 1000)
    return out


def with_device(site: Site, url: str, render: Callable[[Device], object]) -> Response:
    device = site.by_url.get(url)
    return json_response(render(device)) if device else errors.no_such_device(url)


def one_state(site: Site, url: str, name: str, now: float, local: bool) -> Response:
    device = site.by_url.get(url)
    state = device.state(name) if device else None
    if device is None or state is None:
        return errors.no_such_device(url)
    return json_response(state_json(site, device, state, now, local))


def history(
    site: Site,
    request: Request,
    url: str,
    name: str | None,
    kind: str,
    bounds: list[str],
    now: float,
) -> Response:
    """One state's history, or (``name`` None) the list of every historised state's, in the
    device's state order (the spec's "States History values" entries carry no state name)."""
    device = site.by_url.get(url)
    if device is None:
        return errors.no_such_device(url)
    try:
        start, end = int(bounds[0]), int(bounds[1])
        limit = int(request.query["limit"]) if "limit" in request.query else None
    except ValueError:
        return errors.bad_parameters("from, to and limit are epoch milliseconds")
    if start > end or (limit is not None and limit < 1):
        return errors.bad_parameters("from is after to" if start > end else "limit below 1")
    # "GET History values": "Max history query span is limited to 3 days if limit parameter
    # is not set"; with it, any span, and at most `limit` values
    if kind == "raw" and limit is None and end - start > MAX_SPAN_MS:
        raise SpanTooLong(f"{end - start} ms")
    if name is None:
        states = [s for s in device.states if s.historised]
        return json_response(
            [_history(site, device, s, kind, start, end, limit, now) for s in states]
        )
    state = device.state(name)
    return json_response(_history(site, device, state, kind, start, end, limit, now))


def _history(
    site: Site,
    device: Device,
    state: State | None,
    kind: str,
    start: int,
    end: int,
    limit: int | None,
    now: float,
) -> dict[str, Any]:
    values: list[dict[str, Any]] = []
    last = now if device.silent_since is None else min(now, device.silent_since)
    if state is not None and state.historised:
        if kind == "raw":
            values = [_point(state, [h], h) for h in site.history_hours(last, start, end)]
        else:
            periods = site.periods(last, start, end, monthly=kind == "monthly")
            values = [_period(state, a, b, last) for a, b in periods]
    body: dict[str, Any] = {
        "historyValues": values[:limit] if limit is not None else values,  # oldest first
        "historizationMethod": 2 if state is not None and state.growing else 1,
    }
    if device.unit:  # the device's unit, whatever the state (a guess: see the docstring)
        body["deviceUnit"] = device.unit
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


def growing(site: Site, request: Request, now: float) -> Response:
    """"POST Devices growing index variations": one ``delta`` per asked slot, in order."""
    try:
        asked = json.loads(request.body or b"[]")
        out = []
        for item in asked:
            device = site.by_url.get(item["deviceUrl"])
            if device is None:
                return errors.no_such_device(str(item["deviceUrl"]))
            state = device.state(item["stateName"])
            if state is None or not state.growing:
                return errors.bad_parameters(f"{item['stateName']} is not a growing index")
            last_seen = now if device.silent_since is None else min(now, device.silent_since)
            first = state.value(min(item["from"] / 1000, last_seen))
            last = state.value(min(item["to"] / 1000, last_seen))
            assert isinstance(first, int | float) and isinstance(last, int | float)
            out.append(
                {"deviceUrl": device.url, "stateName": state.name, "delta": round(last - first, 3)}
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        return errors.bad_parameters("Malformed devices growing index variation requests")
    return json_response(out)


def _point(state: State, hours: list[int], when: int) -> dict[str, Any]:
    numbers = [v for v in (state.value(h) for h in hours) if isinstance(v, int | float)]
    if not numbers or state.type not in NUMBERS:
        return {"value": None, "min": None, "max": None, "samples": 0, "when": when * 1000}
    mean = numbers[0] if len(numbers) == 1 else round(sum(numbers) / len(numbers), 3)
    return {
        "value": str(mean),
        "min": min(numbers),
        "max": max(numbers),
        "samples": len(numbers),
        "when": when * 1000,
    }


def _as_text(value: object, type_: int) -> str:
    """Cloud event values are strings whatever the state's type (fixtures/overkiz/events);
    JSON arrays and objects as their JSON text."""
    if type_ == BOOL:
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def tick(now: float) -> int:
    return int(now // TICK_S) * TICK_S


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def json_response(data: object) -> Response:
    return Response(200, json.dumps(data).encode(), "application/json")
