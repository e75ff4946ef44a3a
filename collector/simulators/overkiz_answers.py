"""The answers of the simulated Overkiz service that depend only on the site and the time.

Shapes after overkiz-enduser-rest-api.txt: the setup, location, gateway and device objects
("GET Setup", "GET Location", "GET Devices"), device states ("GET Device states": each with its
``lastUpdateTime``) and DeviceStateChangedEvent; the history and growing index variations are
in overkiz_history.py. The local API's shapes follow
a recorded local ``/setup`` (shared/fixtures/overkiz/setup/setup_local_with_climate.json): only
``gateways`` and ``devices``; devices without place, oid or widget but with ``synced`` and
``subsystemId``; no unit attributes at all; states without ``lastUpdateTime``.

Guesses, where neither the spec nor a capture says:
- the values of a blob (4) and a password (9) state: a base64 text and a masked text.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from collector.simulators import overkiz_limits as errors
from collector.simulators._http import Response
from collector.simulators.overkiz_model import (
    BOOL,
    TICK_S,
    UNIT_ATTRIBUTE,
    Device,
    Site,
    State,
    state_unit_attribute,
)

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
