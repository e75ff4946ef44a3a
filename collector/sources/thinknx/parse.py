"""Pure parsers of Integration Kit answers: JSON bytes -> numbers -> readings.

Every status controller answers ``{"namespace": <controller>, "guid": ..., "status": <value>,
"comm_obj": ...}`` (Integration Kit, "API URLs"); the value may be a JSON number or a numeric
string ("21.5"), both are the same reading. Mode numbers are Thinknx's own encoding and are
turned into ``state`` readings here; units go through the shared normaliser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from collector import normalise
from collector.errors import ParseError
from collector.model import Reading, Tags, make_tags
from collector.schema import STATE_BY_NAME
from collector.sources.thinknx.uptime import parse_uptime

SOURCE = "thinknx"
VENDOR = "Thinknx"


@dataclass(frozen=True, slots=True)
class Status:
    """What one status controller gives: a measurement, or a ``state`` with its name."""

    measurement: str  # "state" for codes
    kind: str | None = None  # the ``kind`` tag (setpoint target, level dimmer/blind/slats)
    state: str | None = None  # the ``name`` tag of a state


#: Object kind -> its status controllers, in the order they are asked (section per kind of
#: "API URLs"). The HVAC fan speed is read with ``hvacfanset``, the URL the document gives for
#: "Fan speed (Status)"; its example writes ``hvacfanstatus`` (the client falls back to it).
CONTROLLERS: Final[dict[str, dict[str, Status]]] = {
    "thermostat": {
        "actualtemp": Status("temperature_c"),
        "setpointstatus": Status("setpoint_c", kind="target"),
        "tempmodestatus": Status("state", state="temp_mode"),
        "chronoenstatus": Status("state", state="chrono"),
    },
    "hvac": {
        "hvacpowerstatus": Status("state", state="on_off"),
        "hvacsetpointstatus": Status("setpoint_c", kind="target"),
        "hvacmodestatus": Status("state", state="hvac_mode"),
        "hvacfanset": Status("state", state="fan_speed"),
    },
    "light": {"powerstatus": Status("state", state="switch")},
    # "Lights, switches and bulbs" have both the Power and the PowerLevel controller
    "dimmer": {
        "powerstatus": Status("state", state="switch"),
        "powerlevelstatus": Status("level_pct", kind="dimmer"),
    },
    "blind": {
        "heightlevelstatus": Status("level_pct", kind="blind"),
        "blindanglestatus": Status("level_pct", kind="slats"),
    },
    "analog": {"getvalue": Status("")},  # measurement from the object's quantity
}
#: Namespaces a controller's answer may carry (the fan speed answers as "hvacfanset").
NAMESPACES: Final[dict[str, frozenset[str]]] = {
    "hvacfanset": frozenset({"hvacfanset", "hvacfanstatus"}),
    "hvacfanstatus": frozenset({"hvacfanset", "hvacfanstatus"}),
}
#: The ``kind`` tag of an analog object's measurement where the schema splits it by kind.
_ANALOG_KIND: Final[dict[str, str]] = {"level_pct": "level"}
#: Percentages of dimmers and blinds: "[0 to 100]".
_PCT_RANGE = (0.0, 100.0)


def load_json(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object of an answer; anything else is a ParseError naming ``what``."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise ParseError(f"{what}: the answer is not JSON ({type(err).__name__})") from None
    if not isinstance(doc, dict):
        raise ParseError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    return doc


def error_text(body: bytes) -> str | None:
    """The ``error`` text of a JSON error body (``{"error": "device not found"}``), if any."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:80]
    return None


def parse_status(body: bytes, *, controller: str, guid: str, what: str) -> float | None:
    """The ``status`` value of a status answer as a float; None for an unknown value.

    A wrong namespace or guid, a missing status or a value that is not a number is a
    ParseError naming ``what`` (the object) and the part.
    """
    doc = load_json(body, what)
    if isinstance(doc.get("error"), str):
        raise ParseError(f"{what}: the server answered {str(doc['error'])[:80]!r}",
                         part=controller)
    namespace = doc.get("namespace")
    if namespace is not None and str(namespace) not in NAMESPACES.get(controller,
                                                                    {controller}):
        raise ParseError(f"{what}: answer of {str(namespace)[:40]!r}, asked {controller}",
                         part="namespace")
    if "guid" in doc and str(doc["guid"]) != guid:
        raise ParseError(f"{what}: answer for another object {str(doc['guid'])[:40]!r}",
                         part="guid")
    if "status" not in doc:
        raise ParseError(f"{what}: {controller} answer without a status", part="status")
    try:
        return normalise.number(doc["status"])
    except ValueError as err:
        raise ParseError(f"{what}: {controller}: {err}", part="status") from None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the readings of one object carry (from ``[[thinknx.objects]]``)."""

    guid: str
    kind: str
    name: str
    room: str | None = None
    quantity: str | None = None
    unit: str | None = None

    @property
    def tags(self) -> Tags:
        return make_tags(room=self.room, model=self.kind)


def object_readings(
    obj: ObjectInfo, values: Mapping[str, float | None], *, site: str, time: datetime
) -> list[Reading]:
    """The readings of one object from its controllers' values (unknown values: none)."""
    out: list[Reading] = []
    for controller, value in values.items():
        spec = CONTROLLERS[obj.kind].get(controller)
        if spec is None:
            spec = CONTROLLERS[obj.kind].get(_FAN_ALIAS.get(controller, ""))
        if spec is None or value is None:
            continue
        reading = _reading(obj, controller, spec, value, site=site, time=time)
        if reading is not None:
            out.append(reading)
    return out


_FAN_ALIAS: Final = {"hvacfanstatus": "hvacfanset"}


def _reading(obj: ObjectInfo, controller: str, spec: Status, value: float, *, site: str,
             time: datetime) -> Reading | None:
    extra: dict[str, str | None] = {"room": obj.room, "model": obj.kind}
    label: str | None = None
    measurement = spec.measurement
    if spec.state is not None:
        code = int(value) if value == int(value) else None
        labels = dict(STATE_BY_NAME[spec.state].codes)
        if code is None or code not in labels:
            normalise.warn_once(VENDOR, f"{controller} code", str(value))
            return None
        value, label, extra["name"] = float(code), labels[code], spec.state
    elif obj.kind == "analog":
        assert obj.quantity is not None and obj.unit is not None  # the config checks it
        measurement = normalise.measurement_for(obj.quantity)
        converted = normalise.convert_or_none(
            value, obj.unit, to=normalise.rule(obj.unit).unit, vendor=VENDOR)
        if converted is None:
            return None
        value = converted
        extra["kind"] = _ANALOG_KIND.get(measurement)
    elif measurement == "level_pct" and not _PCT_RANGE[0] <= value <= _PCT_RANGE[1]:
        normalise.warn_once(VENDOR, f"{controller} percentage", str(value))
        return None
    if spec.kind is not None:
        extra["kind"] = spec.kind
    return Reading(measurement, value, time, SOURCE, site, obj.guid, obj.name,
                   make_tags(**extra), label)


# --- system/serverStatus --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerStatus:
    version: str | None
    readings: tuple[Reading, ...]
    problems: tuple[str, ...]  # fields that could not be read (the rest is kept)


def parse_server_status(
    body: bytes, *, site: str, device_id: str, device: str, time: datetime,
    tz: tzinfo = UTC,
) -> ServerStatus:
    """"System controller / Get server status": uptimes in seconds, connected clients, the
    number of connected PBX users and the configuration time (a local time of the server's
    clock, read in ``tz``). An unreadable field is a problem; the others are kept."""
    doc = load_json(body, "system/serverStatus")
    if isinstance(doc.get("error"), str):
        raise ParseError(f"system/serverStatus: the server answered {str(doc['error'])[:80]!r}")
    readings: list[Reading] = []
    problems: list[str] = []

    def add(measurement: str, value: float, **tags: str) -> None:
        readings.append(Reading(measurement, value, time, SOURCE, site, device_id, device,
                                make_tags(model="server", **tags)))

    for field, kind in (("process_uptime", "process"), ("server_uptime", "server")):
        raw = doc.get(field)
        if normalise.is_unknown(raw):
            continue
        try:
            add("uptime_s", parse_uptime(raw, field=field), kind=kind)
        except ParseError as err:
            problems.append(str(err))
    try:
        clients = normalise.number(doc.get("connected_clients"))
    except ValueError as err:
        problems.append(f"connected_clients: {err}")
    else:
        if clients is not None and clients >= 0:
            add("clients", clients)
    users = doc.get("pbx_users")
    if isinstance(users, str):
        # "identifiers of active connected PBX users separated by commas": "" is nobody
        add("pbx_users", float(sum(1 for user in users.split(",") if user.strip())))
    elif users is not None:
        problems.append(f"pbx_users: expected identifiers separated by commas, got "
                        f"{type(users).__name__}")
    config_time = doc.get("config_time")
    if not normalise.is_unknown(config_time):
        stamp = _config_time(config_time, tz)
        if stamp is None:
            problems.append(f"config_time: unreadable {str(config_time)[:40]!r}")
        else:
            add("config_time_s", stamp)
    version = doc.get("version")
    return ServerStatus(str(version)[:40] if version is not None else None,
                        tuple(readings), tuple(problems))


def _config_time(raw: object, tz: tzinfo) -> float | None:
    """"hh:mm:ss YYYY-MM-DD" -> Unix seconds.

    The document gives the format and no zone: it is the server's own clock, a local time
    ("System controller / Get server status"). In the hour that occurs twice when summer
    time ends the first is taken; a time in the skipped hour of spring keeps the offset
    before the change.
    """
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.strptime(raw.strip(), "%H:%M:%S %Y-%m-%d").replace(tzinfo=tz)
    except ValueError:
        return None
    value = stamp.timestamp()
    return value if math.isfinite(value) else None
