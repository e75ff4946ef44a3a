"""The Thinknx source: the status of every configured object and the server's status.

The Integration Kit has no discovery, so the objects come from ``[[thinknx.objects]]``. One
poll asks every status controller of every object, at most ``max_concurrency`` requests at
once over one connection pool of that size, plus ``system/serverStatus``. A failing object
(or server status) costs only its own readings: the poll raises ``PartialFailure`` with the
rest and one text per failed part; ``problems`` shows the parts failing right now. A poll in
which every part fails raises the first error instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import httpx
import tzlocal

from collector.config import ThinknxConfig
from collector.errors import CollectorError, ParseError, PartialFailure, PermanentError
from collector.model import Reading, utc_now
from collector.sources.backoff import Clock, Sleep
from collector.sources.base import Source
from collector.sources.thinknx.client import ThinknxClient, build_http_client
from collector.sources.thinknx.parse import (
    CONTROLLERS,
    ObjectInfo,
    object_readings,
    parse_server_status,
    parse_status,
)

log = logging.getLogger(__name__)

PART_SERVER = "server"
FAN_FALLBACK = {"hvacfanset": "hvacfanstatus"}
_warned_params: set[str] = set()


def object_part(guid: str) -> str:
    return "object:" + guid


def server_zone(name: str | None) -> tzinfo:
    """The zone of the server's clock: the configured one, else this machine's (UTC when it
    cannot be told)."""
    if name:
        return ZoneInfo(name)
    try:
        return tzlocal.get_localzone()
    except (LookupError, OSError, ValueError) as err:  # e.g. no /etc/localtime
        log.warning("cannot determine the local time zone (%s); reading the Thinknx "
                    "configuration time as UTC", err)
        return UTC


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
        self.tz = server_zone(config.timezone)
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._problems: dict[str, CollectorError] = {}
        self._fan: dict[str, str] = {}  # guid -> the fan-speed controller that answers
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

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        finally:
            if self._owns_http:
                await self._http.aclose()

    async def poll(self) -> Sequence[Reading]:
        now = utc_now()
        # the server status first, alone: a Digest challenge is answered once, and the
        # concurrent requests after it reuse it instead of each being challenged
        server = await self._server(now)
        results = [server, *await asyncio.gather(*(self._object(o, now) for o in self.objects))]
        readings: list[Reading] = []
        errors: list[str] = []
        first: CollectorError | None = None
        parts = [PART_SERVER, *(object_part(o.guid) for o in self.objects)]
        for part, result in zip(parts, results, strict=True):
            got, error = result
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

    async def _server(self, now: datetime) -> tuple[Sequence[Reading], CollectorError | None]:
        try:
            async with self._semaphore:
                body = await self.client.get("system/serverStatus", what="server status")
            status = parse_server_status(body, site=self.name, device_id=self.server_id,
                                         device=self._server_name, time=now, tz=self.tz)
        except CollectorError as err:
            return (), err
        if status.problems:
            return status.readings, ParseError("server status: " + "; ".join(status.problems))
        return status.readings, None

    async def _object(self, obj: ObjectInfo, now: datetime
                      ) -> tuple[Sequence[Reading], CollectorError | None]:
        what = f"{obj.kind} {obj.name!r} (guid {obj.guid})"
        values: dict[str, float | None] = {}
        try:
            for controller in CONTROLLERS[obj.kind]:
                values[controller] = await self._status(obj, controller, what)
        except CollectorError as err:
            return object_readings(obj, values, site=self.name, time=now), err
        return object_readings(obj, values, site=self.name, time=now), None

    async def _status(self, obj: ObjectInfo, controller: str, what: str) -> float | None:
        asked = self._fan.get(obj.guid, controller) if controller in FAN_FALLBACK else controller
        try:
            async with self._semaphore:
                body = await self.client.get(asked, {"guid": obj.guid}, what=what)
        except PermanentError as err:
            other = FAN_FALLBACK.get(asked)
            if other is None or "params errors" not in str(err):
                raise
            self._fan[obj.guid] = other  # a server that only knows the example's name
            async with self._semaphore:
                body = await self.client.get(other, {"guid": obj.guid}, what=what)
            asked = other
        return parse_status(body, controller=asked, guid=obj.guid, what=what)
