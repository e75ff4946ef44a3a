"""The FRITZ!Box source: device list (every ``interval``), device statistics (every
``stats_interval``) and, when enabled, the VoIP accounts over TR-064.

Partial failures: the device list is the heart of a poll, so its failure fails the poll.
A failing VoIP part or a failing device in the statistics round costs only that part: the
rest is returned, the part is listed in ``problems`` (part -> current error) and counted in
``error_counts``, and it is logged once when it starts failing (or fails differently) and
once when it works again, never once per poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import httpx
import tzlocal

from collector.config import FritzboxConfig
from collector.errors import CollectorError
from collector.model import Reading, utc_now
from collector.sources.base import Source, SourceJob
from collector.sources.fritzbox.client import (
    Clock,
    FritzboxClient,
    Sleep,
    build_http_client,
)
from collector.sources.fritzbox.parse import DeviceInfo, DeviceList, parse_devicelist
from collector.sources.fritzbox.parse_stats import parse_devicestats
from collector.sources.fritzbox.parse_tr064 import voip_readings
from collector.sources.fritzbox.tr064 import Tr064Client

log = logging.getLogger(__name__)

#: Statistics requests in flight at once; a FRITZ!Box answers them one by one anyway.
DEFAULT_MAX_CONCURRENCY = 4

PART_DEVICELIST = "devicelist"
PART_VOIP = "voip"


def stats_part(device_id: str) -> str:
    return f"stats:{device_id}"


def site_timezone(name: str | None) -> tzinfo:
    """The configured zone, else this machine's local zone (UTC when it cannot be told)."""
    if name:
        return ZoneInfo(name)
    try:
        return tzlocal.get_localzone()
    except (LookupError, OSError, ValueError) as err:  # e.g. no /etc/localtime
        log.warning("cannot determine the local time zone (%s); using UTC", err)
        return UTC


class FritzboxSource(Source):
    """One FRITZ!Box. ``http`` (for tests) is shared by the AHA and TR-064 clients."""

    kind = "fritzbox"

    def __init__(
        self,
        config: FritzboxConfig,
        http: httpx.AsyncClient | None = None,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(config.name, config.interval)
        self.config = config
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(config)
        self.client = FritzboxClient(config, self._http, clock=clock, sleep=sleep)
        self.tr064 = Tr064Client(config, self._http, clock=clock)
        self.tz = site_timezone(config.timezone)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._problems: dict[str, CollectorError] = {}
        self._value_problems: set[str] = set()
        self._error_counts: Counter[str] = Counter()

    # --- state of the parts -------------------------------------------------------------------

    @property
    def problems(self) -> Mapping[str, CollectorError]:
        """Parts failing right now: "devicelist", "voip", "stats:<device_id>"."""
        return dict(self._problems)

    @property
    def error_counts(self) -> Mapping[str, int]:
        """Failures per part since start."""
        return dict(self._error_counts)

    def _failed(self, part: str, err: CollectorError, *, report: bool = True) -> None:
        self._error_counts[part] += 1
        previous = self._problems.get(part)
        self._problems[part] = err
        if report and (previous is None or str(previous) != str(err)):
            log.warning("%s: %s failed: %s", self.label, part, err)

    def _ok(self, part: str) -> None:
        if self._problems.pop(part, None) is not None:
            log.info("%s: %s works again", self.label, part)

    # --- Source -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
            await self.tr064.aclose()
        finally:
            if self._owns_http:
                await self._http.aclose()

    def jobs(self) -> Sequence[SourceJob]:
        return (
            SourceJob("poll", self.config.interval, self.poll),
            SourceJob("stats", self.config.stats_interval, self.stats),
        )

    async def poll(self) -> Sequence[Reading]:
        """Device-list readings at the poll time, plus VoIP readings when enabled."""
        now = utc_now()
        readings = list((await self._devicelist(now)).readings)
        if self.config.voip:
            readings.extend(await self._voip(now))
        return readings

    async def stats(self) -> Sequence[Reading]:
        """``getbasicdevicestats`` of every device with statistics, a few at a time.

        A failing device costs only its own readings; when every device fails the round
        fails with the first error.
        """
        devices = [d for d in (await self._devicelist(utc_now())).devices if d.wants_stats]
        results = await asyncio.gather(*(self._device_stats(d) for d in devices))
        errors = [r for r in results if isinstance(r, CollectorError)]
        if devices and len(errors) == len(devices):
            raise errors[0]
        return [reading for r in results if not isinstance(r, CollectorError) for reading in r]

    async def history(self, since: datetime) -> Sequence[Reading]:
        """The box keeps only its own statistics window: one statistics round."""
        since_utc = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        return [r for r in await self.stats() if r.time >= since_utc]

    async def check(self) -> str:
        """Log in, read the device list and (when enabled) TR-064; describe the box."""
        await self.client.login()
        devicelist = parse_devicelist(
            await self.client.get_devicelist(), site=self.name, time=utc_now()
        )
        head = "FRITZ!Box"
        try:
            description = await self.tr064.description()
        except CollectorError as err:
            if self.config.voip:
                raise
            log.info("%s: TR-064 description unavailable: %s", self.label, err)
        else:
            if description.fritzos:
                head = f"FRITZ!OS {description.fritzos} ({description.model})"
            else:
                head = description.model
        devices = sum(1 for d in devicelist.devices if not d.is_group)
        groups = len(devicelist.devices) - devices
        parts = [head, _count(devices, "device")]
        if groups:
            parts.append(_count(groups, "group"))
        if self.config.voip:
            snapshot = await self.tr064.voip()
            parts.append("VoIP: " + _count(len(snapshot.accounts), "account"))
        return ", ".join(parts)

    # --- parts --------------------------------------------------------------------------------

    async def _devicelist(self, now: datetime) -> DeviceList:
        try:
            devicelist = parse_devicelist(
                await self.client.get_devicelist(), site=self.name, time=now
            )
        except CollectorError as err:
            self._failed(PART_DEVICELIST, err, report=False)  # the caller reports it
            raise
        self._ok(PART_DEVICELIST)
        current = {str(p) for p in devicelist.problems}
        for text in sorted(current - self._value_problems):
            log.warning("%s: device list value skipped: %s", self.label, text)
        self._value_problems = current
        return devicelist

    async def _voip(self, now: datetime) -> tuple[Reading, ...]:
        try:
            snapshot = await self.tr064.voip()
        except CollectorError as err:
            self._failed(PART_VOIP, err)
            return ()
        self._ok(PART_VOIP)
        return voip_readings(
            snapshot.accounts,
            snapshot.clients,
            site=self.name,
            time=now,
            numbers_as_tags=self.config.voip_numbers_as_tags,
        )

    async def _device_stats(self, device: DeviceInfo) -> tuple[Reading, ...] | CollectorError:
        part = stats_part(device.device_id)
        try:
            async with self._semaphore:
                body = await self.client.get_devicestats(device.device_id)
            readings = parse_devicestats(
                body,
                site=self.name,
                device_id=device.device_id,
                device=device.name,
                fetched_at=utc_now(),
                tz=self.tz,
                tags=device.tags,
            )
        except CollectorError as err:
            self._failed(part, err)
            return err
        self._ok(part)
        return readings


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
