"""The Thinknx source: the status of every configured object and the server's status.

The Integration Kit has no discovery, so the objects come from ``[[thinknx.objects]]``. One
poll asks ``system/serverStatus`` and, once it is answered, every status controller of every
object, at most ``max_concurrency`` requests at once over one connection pool of that size.

"Not all capabilities are available to all the devices" (Integration Kit, "Devices
capabilities"), so every controller of an object is asked on its own and one that fails
costs only its own readings. A controller that gets one of the documented error answers
(HTTP 400/404 "impossible to execute", "params errors", "device not found") while another
controller of the same object answers is a capability the object does not have: it is no
failure, it is left out of the polls after it and asked again every ``REPROBE_S``, with one
log line when it goes and one when it comes back. An object none of whose controllers
answers is a failing object.

A request that gets no answer at all (a timeout, a refused or broken connection) means the
server is not answering: the requests of that poll not sent yet are not sent, so a hanging
server costs one timeout per poll, not one for the server status and one more per batch of
``max_concurrency`` object requests.

A failing object (or server status) costs only its own readings: the poll raises
``PartialFailure`` with the rest and one text per failed part; ``problems`` shows the parts
failing right now. A poll in which every part fails raises the first error instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

import httpx

from collector.config import ThinknxConfig
from collector.errors import CollectorError, ParseError, PartialFailure, TransientError
from collector.model import Reading, utc_now
from collector.sources.backoff import Clock, Sleep
from collector.sources.base import Source
from collector.sources.thinknx.client import (
    Refusal,
    ThinknxClient,
    Unreachable,
    build_http_client,
)
from collector.sources.thinknx.parse import (
    CONTROLLERS,
    ObjectInfo,
    object_readings,
    parse_server_status,
    parse_status,
)
from collector.sources.zones import site_timezone

log = logging.getLogger(__name__)

PART_SERVER = "server"
FAN_FALLBACK = {"hvacfanset": "hvacfanstatus"}
#: A capability found missing is asked again after this many seconds (the project on the
#: server may have been changed since).
REPROBE_S = 3600.0
_warned_params: set[str] = set()

#: What one controller of an object gave: its value (None: unknown) or the error.
Answer = float | None | CollectorError


def object_part(guid: str) -> str:
    return "object:" + guid


class _Cycle:
    """One poll: once a request got no answer at all, the requests not sent yet are not
    sent."""

    __slots__ = ("silent",)

    def __init__(self) -> None:
        self.silent: Unreachable | None = None

    def check(self, what: str) -> None:
        if self.silent is not None:
            raise TransientError(f"{what}: not asked, the server left another request of "
                                 "this poll unanswered")


class ThinknxSource(Source):
    """One Thinknx server, local or through the cloud. ``http`` is for tests."""

    kind = "thinknx"

    def __init__(
        self,
        config: ThinknxConfig,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(config.name, config.interval)
        self.config = config
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(config)
        self.client = ThinknxClient(config, self._http, clock=clock, sleep=sleep)
        self.tz = site_timezone(config.timezone)  # the zone of the server's clock
        self._clock = clock
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._problems: dict[str, CollectorError] = {}
        self._fan: dict[str, str] = {}  # guid -> the fan-speed controller that answers
        #: (guid, controller) of capabilities found missing -> when they last were asked
        self._missing: dict[tuple[str, str], float] = {}
        self.objects = tuple(
            ObjectInfo(o.guid, o.kind, o.name or o.guid, o.room, o.quantity, o.unit)
            for o in config.objects
        )
        self.server_id = f"server:{self.client.host}"
        if config.auth == "params" and config.cloud_key is None and config.name not in \
                _warned_params:
            _warned_params.add(config.name)
            log.warning("thinknx %s: auth = \"params\" sends the password in the URL of "
                        "every request (plain HTTP on the local network only)", config.name)

    @property
    def problems(self) -> Mapping[str, CollectorError]:
        """Parts failing right now: "server", "object:<guid>"."""
        return dict(self._problems)

    @property
    def missing(self) -> frozenset[tuple[str, str]]:
        """(guid, status controller) of the capabilities the objects were found without."""
        return frozenset(self._missing)

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        finally:
            if self._owns_http:
                await self._http.aclose()

    async def poll(self) -> Sequence[Reading]:
        now, tick, cycle = utc_now(), self._clock(), _Cycle()
        parts = [PART_SERVER, *(object_part(o.guid) for o in self.objects)]
        # The server status goes first: the objects follow as soon as it has any answer. A
        # server that gives none ends the poll there (one timeout); refused credentials
        # are refused once, not by a burst of requests; and the Digest challenge it gets
        # is answered by every request after it instead of each being challenged.
        server = await self._server(now, cycle)
        results = [server, *await asyncio.gather(
            *(self._object(o, now, tick, cycle) for o in self.objects))]
        readings: list[Reading] = []
        errors: list[str] = []
        first: CollectorError | None = None
        for part, (got, error) in zip(parts, results, strict=True):
            readings.extend(got)
            if error is None:
                self._problems.pop(part, None)
                continue
            self._problems[part] = error
            errors.append(f"{part}: {type(error).__name__}: {error}")
            first = first or error
        for part in [p for p in self._problems if p not in parts]:
            self._problems.pop(part)  # objects no longer configured
        if first is not None and not readings:
            raise first
        if errors:
            raise PartialFailure(readings, errors)
        return readings

    async def check(self) -> str:
        """Ask the server's status; describe it (version, objects) without any secret."""
        async with self._semaphore:
            body = await self.client.get("system/serverStatus", what="server status")
        status = parse_server_status(body, site=self.name, device_id=self.server_id,
                                     device=self._server_name, time=utc_now(), tz=self.tz)
        where = "cloud" if self.config.cloud_key is not None else self.client.host
        version = f"Thinknx {status.version}" if status.version else "Thinknx server"
        return f"{version} ({where}), {len(self.objects)} objects"

    # --- parts --------------------------------------------------------------------------------

    @property
    def _server_name(self) -> str:
        return f"{self.name} server"

    async def _get(self, controller: str, params: Mapping[str, str] | None, what: str,
                   cycle: _Cycle) -> bytes:
        async with self._semaphore:
            cycle.check(what)
            try:
                return await self.client.get(controller, params, what=what)
            except Unreachable as err:
                cycle.silent = cycle.silent or err
                raise

    async def _server(self, now: datetime, cycle: _Cycle
                      ) -> tuple[Sequence[Reading], CollectorError | None]:
        try:
            body = await self._get("system/serverStatus", None, "server status", cycle)
            status = parse_server_status(body, site=self.name, device_id=self.server_id,
                                         device=self._server_name, time=now, tz=self.tz)
        except CollectorError as err:
            return (), err
        if status.problems:
            return status.readings, ParseError("server status: " + "; ".join(status.problems))
        return status.readings, None

    async def _object(self, obj: ObjectInfo, now: datetime, tick: float, cycle: _Cycle
                      ) -> tuple[Sequence[Reading], CollectorError | None]:
        """The readings of the capabilities that answered, and the object's first real
        failure (one of them that failed, or a refusal of all of them)."""
        controllers = list(CONTROLLERS[obj.kind])
        # the capabilities found missing within the last REPROBE_S are left out (never all:
        # one is only found missing while another answers)
        asked = [c for c in controllers
                 if tick - self._missing.get((obj.guid, c), -REPROBE_S) >= REPROBE_S
                 ] or controllers
        answers: list[Answer] = list(await asyncio.gather(
            *(self._capability(obj, c, cycle) for c in asked)))
        someone_answered = any(not isinstance(a, CollectorError) for a in answers)
        values: dict[str, float | None] = {}
        failure: CollectorError | None = None
        for controller, answer in zip(asked, answers, strict=True):
            key = (obj.guid, controller)
            if not isinstance(answer, CollectorError):
                values[controller] = answer
                if self._missing.pop(key, None) is not None:
                    log.info("%s: %s answers again", self.label, self._what(obj, controller))
            elif isinstance(answer, Refusal) and (someone_answered or key in self._missing):
                if key not in self._missing:
                    log.info("%s: %s answers %r: taken as a capability the object does not "
                             "have, asked again every %.0f min", self.label,
                             self._what(obj, controller), answer.answer, REPROBE_S / 60)
                self._missing[key] = tick
            else:
                failure = failure or answer
        return object_readings(obj, values, site=self.name, time=now), failure

    @staticmethod
    def _what(obj: ObjectInfo, controller: str) -> str:
        return f"{obj.kind} {obj.name!r} (guid {obj.guid}), {controller}"

    async def _capability(self, obj: ObjectInfo, controller: str, cycle: _Cycle) -> Answer:
        what = self._what(obj, controller)
        try:
            return await self._status(obj, controller, what, cycle)
        except CollectorError as err:
            return err

    async def _status(self, obj: ObjectInfo, controller: str, what: str, cycle: _Cycle
                      ) -> float | None:
        asked = self._fan.get(obj.guid, controller) if controller in FAN_FALLBACK else controller
        params = {"guid": obj.guid}
        try:
            body = await self._get(asked, params, what, cycle)
        except Refusal as err:
            other = FAN_FALLBACK.get(asked)
            if other is None or err.answer != "params errors":
                raise
            # a server that only knows the name of the document's example
            body = await self._get(other, params, what, cycle)
            self._fan[obj.guid] = asked = other
        return parse_status(body, controller=asked, guid=obj.guid, what=what)
