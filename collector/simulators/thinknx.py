"""A Thinknx server on loopback: the Integration Kit API, local and cloud forms.

Follows ``thinknx-integration-kit-en.md`` (cross-checked with the Italian edition):
``/api/V1/<controller>`` with ``auth=basic``, ``auth=digest`` or ``user``/``pass`` parameters
("Local based integration"), ``/<KEY>/api/V1/<controller>`` without further authentication
("Cloud based integration"), GET or urlencoded POST, the status controllers of every device
kind with the documented ``{"namespace", "guid", "status", "comm_obj"}`` answers, the set
commands (with ``fb`` the answer carries the new status), ``system/serverStatus`` and the
documented errors: 400 ``params errors`` / ``impossible to execute``, 404 ``device not
found``, 403 wrong authentication, 429 over the rate limit, 500. The project and its values
live in ``thinknx_project``, authentication in ``thinknx_auth``.

Two behaviours the document is silent on are guesses: an object asked for a capability it
does not have ("Not all capabilities are available to all the devices") answers 400
``impossible to execute``, and ``config_time`` is written in the server's local time
(``timezone``, Europe/Rome by default), as its format carries no zone.
"""

from __future__ import annotations

import json
import math
import random
import ssl
import string
import threading
import time
from collections import Counter, deque
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.simulators._http import BaseSimulator, Clock, Request, Response, SimServer
from collector.simulators.thinknx_auth import LocalAuth, Verdict
from collector.simulators.thinknx_project import STATUS, Kind, KnxObject, Project, build_objects

DEVICE_NOT_FOUND = "device not found"
PARAMS_ERRORS = "params errors"
IMPOSSIBLE = "impossible to execute"
_ERROR_STATUS = {DEVICE_NOT_FOUND: 404, PARAMS_ERRORS: 400, IMPOSSIBLE: 400}

#: Set command -> (status controller it changes, value parameter, allowed values, kinds).
#: "heightlevel" takes ``val``, every other command ``cmd`` (as the document writes them).
_SETTERS: dict[str, tuple[str, str, tuple[float, float], tuple[Kind, ...]]] = {
    "power": ("powerstatus", "cmd", (0, 1), (Kind.LIGHT, Kind.DIMMER)),
    "powerlevel": ("powerlevelstatus", "cmd", (0, 100), (Kind.DIMMER,)),
    "heightlevel": ("heightlevelstatus", "val", (0, 100), (Kind.BLIND,)),
    "blindangle": ("blindanglestatus", "cmd", (0, 100), (Kind.BLIND,)),
    "setpoint": ("setpointstatus", "cmd", (-20, 60), (Kind.THERMOSTAT,)),
    "tempmode": ("tempmodestatus", "cmd", (0, 3), (Kind.THERMOSTAT,)),
    "chronoen": ("chronoenstatus", "cmd", (0, 1), (Kind.THERMOSTAT,)),
    "hvacpower": ("hvacpowerstatus", "cmd", (0, 1), (Kind.HVAC,)),
    "hvacsetpoint": ("hvacsetpointstatus", "cmd", (-20, 60), (Kind.HVAC,)),
    "hvacmode": ("hvacmodestatus", "cmd", (0, 4), (Kind.HVAC,)),
    "hvacfan": ("hvacfanset", "cmd", (0, 3), (Kind.HVAC,)),
}
_INTEGER_STATUS = ("tempmodestatus", "chronoenstatus", "hvacpowerstatus", "hvacmodestatus",
                   "hvacfanset", "powerstatus")


class ThinknxSimulator(BaseSimulator):
    """A Thinknx server with a KNX project, served on 127.0.0.1 (one port, both forms)."""

    def __init__(
        self,
        port: int = 0,
        *,
        username: str = "service",
        password: str = "demo pass:5051",  # noqa: S107  (':' and a space, as users have)
        cloud_key: str | None = None,
        objects: list[KnxObject] | None = None,
        count: int | None = None,
        seed: int = 0,
        clock: Clock = time.time,
        language: str = "en",
        rate_limit: float | None = None,
        version: str = "1.1.10.2",
        tls: ssl.SSLContext | None = None,
        timezone: str = "Europe/Rome",
    ) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.username = username
        self.password = password
        self.cloud_key = cloud_key or "".join(
            rng.choice(string.ascii_letters + string.digits) for _ in range(32))
        self.clock = clock
        self.language = language  # "en": "2 days 3 hours 4 min"; "it": "2 giorni 3 ore 4 min"
        self.rate_limit = rate_limit  # answered requests per second; beyond: 429
        self.version = version
        self.timezone = timezone  # the server's clock: config_time is written in it
        self.project = Project(objects if objects is not None else build_objects(count, seed),
                               start=clock())
        self.auth = LocalAuth(username, password, rng)
        self.booted = self.project.start - (23 * 86400 + 4 * 3600 + 12 * 60 + 31)
        self.restarted = self.project.start - (2 * 86400 + 1 * 3600 + 3 * 60 + 7)
        self.configured = self.restarted - 125
        self.served: Counter[str] = Counter()  # answered API requests per controller
        self.auth_failures = 0
        self.rate_limited = 0
        self.object_errors: dict[str, str] = {}  # guid -> error every request for it gets
        self._garbage = 0
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._tls = tls is not None
        self._servers = [SimServer(self._app, port=port, faults=self.faults, clock=clock,
                                   server_header="Thinknx", tls=tls)]
        self.faults.on_expire(self.auth.forget_nonces)

    # ---- what tests and the demo use -----------------------------------------------------

    @property
    def objects(self) -> tuple[KnxObject, ...]:
        return self.project.objects

    def guids(self, kind: Kind | None = None) -> list[str]:
        return [o.guid for o in self.objects if kind is None or o.kind is kind]

    def cloud_url(self) -> str:
        """The base of the cloud form: ``<url>/<KEY>``; the API follows at /api/V1/..."""
        return f"{self.url}/{self.cloud_key}"

    def fail_object(self, guid: str, error: str = DEVICE_NOT_FOUND) -> None:
        """Every request for ``guid`` answers this documented error (e.g. 404 device not found)."""
        with self._lock:
            self.object_errors[guid] = error

    def garbage_next(self, n: int = 1) -> None:
        """The next ``n`` API answers are 200 with an HTML page instead of JSON."""
        with self._lock:
            self._garbage += n

    def status_value(self, guid: str, controller: str) -> float:
        """The value a status controller would answer now (no request counted)."""
        return self.project.status(self.project.by_guid[guid], controller, self.clock())

    def server_status(self) -> dict[str, Any]:
        now = self.clock()
        slot = int(now // 900)
        return {
            "namespace": "system/serverStatus",
            "version": self.version,
            "process_uptime": format_uptime(now - self.restarted, self.language),
            "server_uptime": format_uptime(now - self.booted, self.language),
            # "hh:mm:ss YYYY-MM-DD", no zone: the server's own clock, a local time (a guess:
            # the document gives the format only)
            "config_time": datetime.fromtimestamp(self.configured, ZoneInfo(self.timezone))
            .strftime("%H:%M:%S %Y-%m-%d"),
            "connected_clients": 1 + (slot * 7919) % 4,
            "pbx_users": "101,102" if slot % 2 else "",
        }

    def config_objects(self) -> list[dict[str, str]]:
        """The ``[[thinknx.objects]]`` entries of this project."""
        return [o.config() for o in self.objects]

    def config_dict(self, name: str = "sim", auth: str = "digest", *,
                    cloud: bool = False) -> dict[str, Any]:
        """A ``[[thinknx]]`` section for this simulator, as the TOML file would give it.

        ``cloud``: the cloud form, with this simulator playing the cloud service (its base URL
        as ``cloud_url``, its key as ``cloud_key``) instead of the local URL and credentials.
        """
        head: dict[str, Any] = {"name": name}
        if cloud:
            head |= {"cloud_url": self.url, "cloud_key": self.cloud_key}
        else:
            head |= {"url": self.url, "auth": auth, "username": self.username,
                     "password": self.password}
        return head | {"interval": "60s", "timezone": self.timezone,
                       "objects": self.config_objects()}

    def config_snippet(self, name: str = "sim", auth: str = "digest", *,
                       cloud: bool = False, cloud_hint: bool = False) -> str:
        """The ``[[thinknx]]`` TOML section that works against this simulator as printed.

        ``cloud_hint``: the cloud form's keys follow the local ones as comments, inside the
        ``[[thinknx]]`` table (below the first ``[[thinknx.objects]]`` they would belong to
        the object).
        """
        section = self.config_dict(name, auth, cloud=cloud)
        lines = ["[[thinknx]]"]
        lines += [f"{key} = {_toml(value)}" for key, value in section.items()
                  if key != "objects"]
        if cloud_hint and not cloud:
            lines += ["# the cloud form: instead of url, auth, username and password",
                      f"#cloud_url = {_toml(self.url)}",
                      f"#cloud_key = {_toml(self.cloud_key)}"]
        for entry in section["objects"]:
            lines += ["", "  [[thinknx.objects]]"]
            lines += [f"  {key} = {_toml(value)}" for key, value in entry.items()]
        return "\n".join(lines) + "\n"

    # ---- dispatch ------------------------------------------------------------------------

    def _app(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        form = request.form()
        if len(parts) >= 3 and parts[0] == "api" and parts[1].lower() == "v1":
            controller = "/".join(parts[2:])
            refused = self._local_auth(request, form)
        elif len(parts) >= 4 and parts[1] == "api" and parts[2].lower() == "v1":
            controller = "/".join(parts[3:])
            refused = None if parts[0] == self.cloud_key else _forbidden()
        else:
            return Response.text("404 Not Found\n", 404)
        if refused is not None:
            with self._lock:
                self.auth_failures += 1
            return refused
        limited = self._over_limit()
        if limited is not None:
            return limited
        with self._lock:
            self.served[controller] += 1
            if self._garbage > 0:
                self._garbage -= 1
                return Response(200, b"<html><body>Server busy</body></html>", "text/html")
        if controller == "system/serverStatus":
            return _json(self.server_status())
        return self._device(controller, form)

    def _local_auth(self, request: Request, form: dict[str, str]) -> Response | None:
        """None when the request may pass, else the refusal to send."""
        mode = form.get("auth", "")
        header = request.headers.get("authorization", "")
        if "user" in form or "pass" in form:
            if self._tls:  # "in this case server will respond only to plain http requests"
                return _forbidden()
            verdict = self.auth.params(form.get("user", ""), form.get("pass", ""))
            return None if verdict is Verdict.OK else _forbidden()
        if mode == "basic":
            verdict = self.auth.basic(header) if header else Verdict.MISSING
            if verdict is Verdict.OK:
                return None
            return _unauthorized(self.auth.basic_challenge())
        if mode == "digest":
            verdict = (self.auth.digest(header, request.method, request.path) if header
                       else Verdict.MISSING)
            if verdict is Verdict.OK:
                return None
            return _unauthorized(self.auth.digest_challenge(stale=verdict is Verdict.STALE))
        return _error(PARAMS_ERRORS)  # no auth parameter: a badly built request

    def _over_limit(self) -> Response | None:
        if self.rate_limit is None:
            return None
        now = self.clock()
        with self._lock:
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) < self.rate_limit:
                self._recent.append(now)
                return None
            self.rate_limited += 1
            wait = max(1, math.ceil(self._recent[0] + 1.0 - now))
        response = _json({"error": "rate limit exceeded"}, 429)
        response.headers["Retry-After"] = str(wait)
        return response

    def _device(self, controller: str, form: dict[str, str]) -> Response:
        setter = _SETTERS.get(controller)
        is_status = any(controller in names for names in STATUS.values())
        if setter is None and not is_status and controller not in ("updown", "stop"):
            return _error(PARAMS_ERRORS)
        guid = form.get("guid", "")
        if not guid:
            return _error(PARAMS_ERRORS)
        obj = self.project.by_guid.get(guid)
        with self._lock:
            fault = self.object_errors.get(guid)
        if obj is None:
            return _error(DEVICE_NOT_FOUND)
        if fault is not None:
            return _error(fault)
        now = self.clock()
        if controller == "hvacfanset" and "cmd" in form:  # the document sets with it too
            setter = _SETTERS["hvacfan"]
        if controller in ("updown", "stop"):
            return self._move(obj, controller, form, now)
        if setter is not None:
            return self._set(obj, controller, setter, form, now)
        if not obj.has(controller):
            # The document lists its error answers but not the one for a capability an
            # object does not have ("Not all capabilities are available to all the
            # devices"); "impossible to execute" is a guess.
            return _error(IMPOSSIBLE)
        value = self.project.status(obj, controller, now)
        # the document's status answer of the fan speed is named "hvacfanset" either way
        namespace = "hvacfanset" if controller == "hvacfanstatus" else controller
        return _json(self._answer(obj, namespace, controller, value))

    def _set(self, obj: KnxObject, controller: str,
             setter: tuple[str, str, tuple[float, float], tuple[Kind, ...]],
             form: dict[str, str], now: float) -> Response:
        status, param, (low, high), kinds = setter
        if obj.kind not in kinds or not obj.has(status):
            return _error(IMPOSSIBLE)
        try:
            value = float(form.get(param, ""))
        except ValueError:
            return _error(PARAMS_ERRORS)
        if not (math.isfinite(value) and low <= value <= high):
            return _error(PARAMS_ERRORS)
        if status in _INTEGER_STATUS and value != int(value):
            return _error(PARAMS_ERRORS)
        self.project.command(obj, status, value, now)
        namespace = "hvacfanset" if controller == "hvacfan" else controller
        return self._feedback(obj, namespace, status, form, now)

    def _move(self, obj: KnxObject, controller: str, form: dict[str, str],
              now: float) -> Response:
        if obj.kind is not Kind.BLIND:
            return _error(IMPOSSIBLE)
        cmd = form.get("cmd", "")
        if controller == "stop":
            if cmd != "1":
                return _error(PARAMS_ERRORS)
            self.project.blind_stop(obj, now)
        elif cmd in ("0", "1"):  # 0 = move up, 1 = move down
            self.project.command(obj, "heightlevelstatus", 100.0 * int(cmd), now)
        else:
            return _error(PARAMS_ERRORS)
        return _json(self._answer(obj, controller, "heightlevelstatus", None))

    def _feedback(self, obj: KnxObject, namespace: str, status: str, form: dict[str, str],
                  now: float) -> Response:
        value = self.project.status(obj, status, now) if "fb" in form else None
        return _json(self._answer(obj, namespace, status, value))

    def _answer(self, obj: KnxObject, namespace: str, status: str,
                value: float | None) -> dict[str, Any]:
        answer: dict[str, Any] = {"namespace": namespace, "guid": obj.guid}
        if value is not None:
            answer["status"] = _wire(value, text=obj.text)
        index = STATUS[obj.kind].index(status) if status in STATUS[obj.kind] else 0
        answer["comm_obj"] = obj.comm_obj + min(index, 3)  # hvacfanset/-status: one object
        return answer


def format_uptime(seconds: float, language: str = "en") -> str:
    """ "X days X hours X min" (or "X giorni X ore X min"), singular where the number is 1."""
    minutes = int(seconds // 60)
    d, h, m = minutes // 1440, minutes // 60 % 24, minutes % 60
    if language == "it":
        return f"{d} {'giorno' if d == 1 else 'giorni'} {h} {'ora' if h == 1 else 'ore'} {m} min"
    return f"{d} {'day' if d == 1 else 'days'} {h} {'hour' if h == 1 else 'hours'} {m} min"


def _wire(value: float, *, text: bool) -> float | int | str:
    """A status as the server writes it: whole numbers without decimals, some as strings."""
    number: float | int = int(value) if value == int(value) else value
    return str(number) if text else number


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode("utf-8"), "application/json")


def _error(message: str) -> Response:
    return _json({"error": message}, _ERROR_STATUS[message])


def _forbidden() -> Response:
    return Response.text("403 Forbidden\n", 403)  # "the authentication information is incorrect"


def _unauthorized(challenge: str) -> Response:
    response = Response.text("401 Unauthorized\n", 401)
    response.headers["WWW-Authenticate"] = challenge
    return response


def _toml(value: object) -> str:
    # a JSON string is a valid TOML basic string
    return json.dumps(value, ensure_ascii=False)


def banner(sim: ThinknxSimulator) -> str:
    """What ``collector simulate thinknx`` prints: where it listens and a working config."""
    return (f"Thinknx simulator: {sim.url}/api/V1/...  (cloud form: {sim.url}/<KEY>/api/V1/...)\n"
            f"{len(sim.objects)} objects; a config that works against it as printed:\n\n"
            + sim.config_snippet(cloud_hint=True))


def serve_forever(port: int) -> None:
    """Run the simulator in the foreground until Ctrl-C (``collector simulate thinknx``)."""
    sim = ThinknxSimulator(port=port or 0, rate_limit=100.0)  # a whole poll fits in 1 s
    sim.start()
    print(banner(sim), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
