"""A recorded Overkiz ``/setup`` answer, served by the simulator as it was recorded.

The devices, states, attributes, places, location and gateways are those of the file: ``/setup``,
``/setup/devices``, a device, its places and its location are the recorded objects unchanged.
Every state keeps its recorded value; nothing changes, so the event listener delivers nothing.

Chosen where a recording cannot say:
- a state's ``lastUpdateTime`` (cloud only; the local API sends none) is one hour before the
  simulator started: the captures carry no state times;
- history is flat: the recorded value at every full hour of the window (numbers only);
- a growing index is a number state named ``...ConsumptionState`` or
  ``core:ConsumptionTariff<n>State``; its variation over any slot is 0;
- a file without ``location`` and ``rootPlace`` is a local API answer, served on the local API
  path (bearer token) only; any other file on the cloud path only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.simulators.overkiz_model import (
    HOUR_S,
    NUMBERS,
    TICK_S,
    UNIT_ATTRIBUTE,
    Device,
    Site,
    State,
    state_unit_attribute,
)

_GROWING = re.compile(r".+ConsumptionState$|^core:ConsumptionTariff\d+State$")


def is_local(raw: dict[str, Any]) -> bool:
    """A local API ``/setup``: no location and no places (setup_local_with_climate.json)."""
    return "location" not in raw and "rootPlace" not in raw


class RecordedSetup(Site):
    def __init__(self, raw: dict[str, Any], now: float) -> None:
        self.raw = raw
        self.local = is_local(raw)
        location = raw.get("location") or {}
        self.timezone = str(location.get("timezone") or "UTC")
        try:
            self.zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.timezone, self.zone = "UTC", ZoneInfo("UTC")
        gateways = raw.get("gateways") or [{}]
        self.gateway = str(gateways[0].get("gatewayId", "0000-0000-0000"))
        self.setup_oid = str(raw.get("oid") or f"SETUP-{self.gateway}")
        self.updated = float(int((now - HOUR_S) // TICK_S) * TICK_S)
        self.installed = self.updated
        self.devices = [self._device(d) for d in raw.get("devices") or []]
        self.by_url = {d.url: d for d in self.devices}

    @classmethod
    def load(cls, path: Path, now: float) -> RecordedSetup:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not isinstance(raw.get("devices"), list):
            raise ValueError(f"{path}: not an Overkiz /setup answer (no device list)")
        return cls(raw, now)

    def places(self) -> dict[str, Any] | None:
        place = self.raw.get("rootPlace") if self.raw is not None else None
        return place if isinstance(place, dict) else None

    def _device(self, raw: dict[str, Any]) -> Device:
        definition = raw.get("definition") or {}
        attributes = {
            a.get("name"): a.get("value") for a in raw.get("attributes") or [] if "name" in a
        }
        device_unit = attributes.get(UNIT_ATTRIBUTE)
        states = [
            self._state(s, attributes) for s in raw.get("states") or [] if "name" in s
        ]
        return Device(
            url=str(raw["deviceURL"]),
            label=str(raw.get("label", "")),
            controllable=str(raw.get("controllableName", "")),
            widget=str(raw.get("widget") or definition.get("widgetName") or ""),
            ui_class=str(raw.get("uiClass") or definition.get("uiClass") or ""),
            place=str(raw.get("placeOID", "")),
            type=int(raw.get("type", 0)),
            states=states,
            unit=device_unit if isinstance(device_unit, str) else None,
            available=bool(raw.get("available", True)),
            raw=raw,
        )

    def _state(self, raw: dict[str, Any], attributes: dict[str, Any]) -> State:
        value, type_, name = raw.get("value"), int(raw.get("type", 0)), str(raw["name"])
        numeric = type_ in NUMBERS and isinstance(value, int | float)
        unit = attributes.get(state_unit_attribute(name))
        updated = self.updated
        return State(
            name,
            type_,
            lambda t: value,
            historised=numeric,
            growing=numeric and bool(_GROWING.match(name)),
            unit=unit if isinstance(unit, str) else None,
            changed=lambda now: updated,
        )
