"""An Overkiz (Somfy TaHoma, Atlantic Cozytouch) server simulator on 127.0.0.1.

It plays both the cloud end-user API (``/enduser-mobile-web/enduserAPI``: POST /login with
userId/userPassword, a JSESSIONID cookie, sessions that expire) and the gateway's local API
(``/enduser-mobile-web/1/enduserAPI`` with a bearer token; no places, location or state
history), after overkiz-enduser-rest-api.txt. The house is in overkiz_house.py, the answers'
shapes in overkiz_answers.py, the rate limits and error bodies in overkiz_limits.py; with
``setup_file`` it serves a recorded ``/setup`` answer instead (overkiz_recorded.py).

Tests read ``violations`` (rate limits broken, per limit) and ``endpoint_requests`` (calls per
operation template, e.g. ``"GET /setup"``), move the clock with ``MovableClock``, take an
operation away with ``disable`` (answered as the service answers an unknown resource) and make
the next calls of one operation fail with ``fail_next`` (a maintenance page, an empty 503, a
502, or no answer at all). A call that failed so, or was never answered, is not counted against
the per-session rate limits: the service never saw it.

Guess: the local API answers an operation it does not offer with its "Unknown object." error
(400, errors/local/400-unknown-object.json), as gateways answer operations they lack.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from collector.simulators import overkiz_answers as answers
from collector.simulators import overkiz_history as history
from collector.simulators import overkiz_limits as errors
from collector.simulators._http import (
    BaseSimulator,
    Clock,
    Request,
    Response,
    SimServer,
)
from collector.simulators.overkiz_answers import json_response
from collector.simulators.overkiz_history import SpanTooLong
from collector.simulators.overkiz_house import Device, House
from collector.simulators.overkiz_limits import RateLimits, find_limit
from collector.simulators.overkiz_model import Site
from collector.simulators.overkiz_recorded import RecordedSetup
from collector.simulators.overkiz_sessions import Sessions

FAILURES = ("maintenance", "unavailable", "bad-gateway", "hang")

CLOUD = "/enduser-mobile-web/enduserAPI"
LOCAL = "/enduser-mobile-web/1/enduserAPI"


class MovableClock:
    """Wall-clock time plus an offset that tests move forward."""

    def __init__(self, start: float | None = None) -> None:
        self._offset = 0.0 if start is None else start - time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


class OverkizSimulator(BaseSimulator):
    """A simulated Overkiz account with one gateway and a small house, or the devices of a
    recorded ``/setup`` answer (``setup_file``; ``local`` says which API it is served on, by
    default the one the file's shape shows)."""

    def __init__(
        self,
        port: int = 0,
        *,
        username: str = "demo@example.com",
        password: str = "demo-password",  # noqa: S107
        seed: int = 0,
        clock: Clock = time.time,
        session_ttl_s: float = 1800.0,
        listener_ttl_s: float = 600.0,
        timezone: str = "Europe/Paris",
        setup_file: Path | None = None,
        local: bool | None = None,
        hang_s: float = 60.0,
    ) -> None:
        super().__init__()
        self.username, self.password, self.clock = username, password, clock
        self.house: Site
        self.apis: tuple[bool, ...] = (False, True)  # the APIs served: cloud (False), local
        if setup_file is None:
            self.house = House(seed, clock(), timezone)
        else:
            recorded = RecordedSetup.load(setup_file, clock())
            self.house = recorded
            self.apis = ((recorded.local if local is None else local),)
        self.hang_s = hang_s  # how long an unanswered call keeps its connection open
        self._rng = random.Random(seed)
        self.token = f"{self._rng.getrandbits(128):032x}"
        self.limits = RateLimits()
        self.endpoint_requests: Counter[str] = Counter()
        self._lock = threading.RLock()
        self.sessions = Sessions(username, password, self._rng, self.limits,
                                 session_ttl_s=session_ttl_s, listener_ttl_s=listener_ttl_s,
                                 lock=self._lock)
        self._maintenance = 0
        self._disabled: set[str] = set()
        self._failures: dict[str, list[str]] = {}
        self._stopping = threading.Event()
        self.faults.on_expire(self.expire_sessions)
        self._servers = [SimServer(self._app, port=port, faults=self.faults, clock=clock)]

    # ---- what tests look at and inject -----------------------------------------------------

    @property
    def violations(self) -> Counter[str]:
        """Rate-limit violations per limit (operation or category); tests assert zero."""
        return self.limits.violations

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    def calls(self, template: str) -> int:
        """Calls of one operation, e.g. ``calls("GET /setup")``, over both APIs."""
        return self.endpoint_requests[template]

    def maintenance_next(self, n: int = 1) -> None:
        """The next n requests get the service's 503 maintenance page."""
        with self._lock:
            self._maintenance += n

    def disable(self, template: str) -> None:
        """From now on the operation (as ``endpoint_requests`` names it, e.g.
        ``"POST /setup/devices/states/growingIndexes"``) is answered as an unknown resource:
        cloud 404 "No such resource" (errors/cloud/no-such-resource.json), local API 400
        "Unknown object." (errors/local/400-unknown-object.json)."""
        with self._lock:
            self._disabled.add(template)

    def enable(self, template: str) -> None:
        with self._lock:
            self._disabled.discard(template)

    def fail_next(self, template: str, n: int = 1, kind: str = "maintenance") -> None:
        """The next n calls of the operation fail before the service handles them: kind
        "maintenance" (503, the maintenance page), "unavailable" (503, empty body),
        "bad-gateway" (502 page of the proxy) or "hang" (no answer for ``hang_s`` seconds,
        longer than any client timeout). Neither counts against a rate limit."""
        if kind not in FAILURES:
            raise ValueError(f"kind must be one of {', '.join(FAILURES)}")
        with self._lock:
            self._failures.setdefault(template, []).extend([kind] * n)

    def start(self) -> None:
        self._stopping.clear()
        super().start()

    def stop(self) -> None:
        self._stopping.set()  # calls left hanging end now
        super().stop()

    @property
    def logins(self) -> int:
        return self.sessions.logins

    @property
    def logins_failed(self) -> int:
        return self.sessions.logins_failed

    @property
    def session_ttl_s(self) -> float:
        return self.sessions.session_ttl_s

    @session_ttl_s.setter
    def session_ttl_s(self, seconds: float) -> None:
        self.sessions.session_ttl_s = seconds

    @property
    def listener_ttl_s(self) -> float:
        return self.sessions.listener_ttl_s

    def expire_sessions(self) -> None:
        self.sessions.end_all()

    def drop_listeners(self) -> None:
        self.sessions.drop_listeners()

    def devices(self) -> list[Device]:
        return list(self.house.devices)

    # ---- dispatch --------------------------------------------------------------------------

    def _app(self, request: Request) -> Response:
        with self._lock:
            if self._maintenance > 0:
                self._maintenance -= 1
                return errors.maintenance()
        for prefix, local in ((LOCAL, True), (CLOUD, False)):
            if request.path.startswith(prefix + "/") and local in self.apis:
                return self._api(request, request.path[len(prefix) :], local)
        return errors.no_such_resource()

    def _api(self, request: Request, path: str, local: bool) -> Response:
        now = self.clock()
        method = request.method
        template, handler = self._route(method, path, local)
        operation = f"{method} {template}"
        with self._lock:
            self.endpoint_requests[operation] += 1
            queued = self._failures.get(operation)
            failure = queued.pop(0) if queued else None
            disabled = operation in self._disabled
        if failure is not None:  # before the service: no session touched, no call counted
            return self._fail(failure)
        if not local and method == "POST" and path == "/login":
            return self.sessions.login(request, now)
        session, refusal = self._authenticate(request, local, now)
        if refusal is not None:
            return refusal
        if disabled:  # an operation this server does not offer: no limit to count it in
            return errors.unknown_object() if local else errors.no_such_resource()
        limit = find_limit(method, path)
        if limit is not None and not self.limits.allow(session, limit, now):
            return errors.too_many_requests(limit)
        if handler is None:
            return errors.unknown_object() if local else errors.no_such_resource()
        return handler(request, session, now)

    def _fail(self, kind: str) -> Response:
        if kind == "hang":
            self._stopping.wait(self.hang_s)
            return errors.gateway_timeout()
        if kind == "unavailable":
            return Response(503, b"", "text/html")
        return errors.bad_gateway() if kind == "bad-gateway" else errors.maintenance()

    def _authenticate(
        self, request: Request, local: bool, now: float
    ) -> tuple[str, Response | None]:
        sid = _cookie(request.headers.get("cookie", ""), "JSESSIONID")
        bearer = request.headers.get("authorization", "")
        if sid and bearer:
            return "", errors.session_and_bearer()
        if local:
            if not bearer.lower().startswith("bearer "):
                return "", errors.missing_token()
            if bearer[7:].strip() != self.token:
                return "", errors.not_authenticated(local=True)
            return "bearer", None
        refusal = self.sessions.check(sid, now)
        return ("", refusal) if refusal is not None else (sid or "", None)

    def _route(
        self, method: str, path: str, local: bool
    ) -> tuple[str, Callable[[Request, str, float], Response] | None]:
        seg, house = path.split("/")[1:], self.house
        simple: dict[tuple[str, str], Callable[[Request, str, float], Response]] = {
            ("POST", "/login"): lambda r, s, n: errors.no_such_resource(),
            ("POST", "/logout"): lambda r, s, n: self.sessions.logout(s),
            ("GET", "/setup"): lambda r, s, n: json_response(answers.setup(house, n, local)),
            ("GET", "/setup/devices"): lambda r, s, n: json_response(
                [answers.device_json(house, d, n, local) for d in house.devices]
            ),
            ("GET", "/setup/gateways"): lambda r, s, n: json_response(
                answers.gateways(house, local)
            ),
            ("POST", "/events/register"): lambda r, s, n: self.sessions.register(s, n, local),
            ("POST", "/setup/devices/states/growingIndexes"): lambda r, s, n: history.growing(
                house, r, n
            ),
        }
        if local:  # "GET API version" of the gateway's local API
            simple[("GET", "/apiVersion")] = lambda r, s, n: json_response(
                {"protocolVersion": "2024.6.4"}
            )
        else:  # places, location and the completed executions are the cloud's
            simple[("GET", "/setup/places")] = lambda r, s, n: self._places()
            simple[("GET", "/setup/location")] = lambda r, s, n: json_response(
                answers.location(house)
            )
            # "GET Executions history": the house runs no action groups
            simple[("GET", "/history/executions")] = lambda r, s, n: json_response([])
        if (method, path) in simple:
            return path, simple[(method, path)]
        if method == "POST" and len(seg) == 3 and seg[0] == "events":
            if seg[2] == "fetch":
                return "/events/{listenerId}/fetch", lambda r, s, n: self.sessions.fetch(
                    seg[1], s, n, lambda t, loc: answers.changes(house, t, loc))
            if seg[2] == "unregister":
                return "/events/{listenerId}/unregister", lambda r, s, n: self.sessions.unregister(
                    seg[1])
        if method != "GET" or seg[:2] != ["setup", "devices"] or len(seg) < 3:
            return path, None
        url, rest = unquote(seg[2]), seg[3:]
        base = "/setup/devices/{deviceURL}"
        if not rest:
            return base, lambda r, s, n: answers.with_device(
                house, url, lambda d: answers.device_json(house, d, n, local)
            )
        if rest == ["states"]:
            return base + "/states", lambda r, s, n: answers.with_device(
                house,
                url,
                lambda d: [answers.state_json(house, d, st, n, local) for st in d.states],
            )
        if len(rest) == 2 and rest[0] == "states":
            name = unquote(rest[1])
            return base + "/states/{name}", lambda r, s, n: answers.one_state(
                house, url, name, n, local
            )
        if len(rest) in (5, 6) and rest[0] == "states" and rest[2] == "history":
            name, kind = unquote(rest[1]), rest[3] if len(rest) == 6 else "raw"
            template = base + "/states/{name}/history/" + ("" if kind == "raw" else kind + "/")
            template += "{from}/{to}"
            if local or kind not in ("raw", "daily", "monthly"):
                return template, None  # the local API keeps no history
            return template, lambda r, s, n: self._history(r, url, name, kind, rest[-2:], n)
        if len(rest) in (4, 5) and rest[:2] == ["states", "history"]:  # every state at once
            kind = rest[2] if len(rest) == 5 else "raw"
            template = base + "/states/history/" + ("" if kind == "raw" else kind + "/")
            template += "{from}/{to}"
            if local or kind not in ("raw", "daily", "monthly"):
                return template, None
            return template, lambda r, s, n: self._history(r, url, None, kind, rest[-2:], n)
        return path, None

    def _places(self) -> Response:
        house = self.house
        if isinstance(house, RecordedSetup):
            place = house.places()
            return json_response(place) if place is not None else errors.no_such_resource()
        assert house.root is not None
        return json_response(house.root.json(answers.CREATED_MS))

    def _history(
        self, request: Request, url: str, name: str | None, kind: str, bounds: list[str], now: float
    ) -> Response:
        try:
            return history.history(self.house, request, url, name, kind, bounds, now)
        except SpanTooLong:
            self.limits.violations["history-span"] += 1
            return errors.bad_parameters("Max history query span is limited to 3 days")


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def config_snippet(sim: OverkizSimulator) -> str:
    """A ``[[overkiz]]`` section that works as printed against this running simulator: the
    cloud with username and password, or the local API with its token where only that is
    served."""
    if False not in sim.apis:
        return f'[[overkiz]]\nname = "overkiz-sim"\nurl = "{sim.url}"\ntoken = "{sim.token}"\n'
    return (
        "[[overkiz]]\n"
        'name = "overkiz-sim"\n'
        f'url = "{sim.url}"\n'
        f'username = "{sim.username}"\n'
        f'password = "{sim.password}"\n'
    )


def serve_forever(port: int, setup_file: Path | None = None) -> None:
    """Run the simulator in the foreground until Ctrl-C (``collector simulate overkiz``); with
    ``setup_file``, serving that recorded ``/setup`` answer."""
    sim = OverkizSimulator(port=port, setup_file=setup_file)
    sim.start()
    if setup_file is not None:
        print(f"Serving the recorded setup {setup_file} ({len(sim.devices())} devices)", flush=True)
    if True in sim.apis and False in sim.apis:
        print(f"Overkiz simulator: {sim.url}{CLOUD}  (local API: {sim.url}{LOCAL})", flush=True)
    else:
        print(f"Overkiz simulator: {sim.url}{LOCAL if True in sim.apis else CLOUD}", flush=True)
    print("Config for collector.toml:\n", flush=True)
    print(config_snippet(sim), flush=True)
    if True in sim.apis and False in sim.apis:
        print(f'# local API instead: url = "{sim.url}" and token = "{sim.token}"', flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
