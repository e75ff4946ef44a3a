"""The FRITZ!Box source: device list (every ``interval``), device statistics (every
``stats_interval``) and, when enabled, the VoIP accounts over TR-064.

Partial failures: the device list is the heart of a poll, so its failure fails the poll.
A failing VoIP part, a value of the device list the parser had to skip, or a failing device
in a statistics round costs only that part: the job raises ``PartialFailure`` carrying every
reading it has plus one text per failed part, and the job runner stores the readings, counts
the errors and logs them once per change. ``problems`` shows the parts failing right now.
A statistics round in which every device fails raises the first error instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo

import httpx

from collector.config import FritzboxConfig
from collector.errors import CollectorError, ParseError, PartialFailure
from collector.model import Reading, utc_now
from collector.sources.base import HistorySink, ReadingSink, Source, SourceJob
from collector.sources.fritzbox import normalise as nz
from collector.sources.fritzbox.client import (
    Clock,
    FritzboxClient,
    Sleep,
    build_http_client,
)
from collector.sources.fritzbox.parse import DeviceInfo, DeviceList, parse_devicelist
from collector.sources.fritzbox.parse_stats import parse_devicestats
from collector.sources.fritzbox.parse_tr064 import voip_readings
from collector.sources.fritzbox.tr064 import GET_VOIP_STATUS, Tr064Client
from collector.sources.zones import site_timezone

log = logging.getLogger(__name__)

#: Statistics requests in flight at once; a FRITZ!Box answers them one by one anyway.
DEFAULT_MAX_CONCURRENCY = 4

PART_DEVICELIST = "devicelist"
PART_VOIP = "voip"


STATS_PART_PREFIX = "stats:"


def stats_part(device_id: str) -> str:
    return STATS_PART_PREFIX + device_id


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

    @property
    def problems(self) -> Mapping[str, CollectorError]:
        """Parts failing right now: "devicelist", "voip", "stats:<device_id>"."""
        return dict(self._problems)

    def _failed(self, part: str, err: CollectorError) -> str:
        self._problems[part] = err
        return f"{part}: {type(err).__name__}: {err}"

    def _ok(self, part: str) -> None:
        self._problems.pop(part, None)

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
            SourceJob("stats", self.config.stats_interval, self.stats, self.stream_stats),
        )

    async def poll(self) -> Sequence[Reading]:
        """Device-list readings at the poll time, plus VoIP readings when enabled."""
        now = utc_now()
        devicelist = await self._devicelist(now)
        readings = list(devicelist.readings)
        errors = [f"{PART_DEVICELIST}: ParseError: {p}" for p in devicelist.problems]
        if self.config.voip:
            try:
                readings.extend(await self._voip(now))
            except CollectorError as err:
                errors.append(self._failed(PART_VOIP, err))
            else:
                self._ok(PART_VOIP)
        if errors:
            raise PartialFailure(readings, errors)
        return readings

    async def stats(self) -> Sequence[Reading]:
        """``getbasicdevicestats`` of every device with statistics, a few at a time.

        A failing device costs only its own readings (``PartialFailure``); when every
        device fails the round fails with the first error.
        """
        readings: list[Reading] = []
        try:
            await self.stream_stats(readings.extend)
        except PartialFailure as err:
            raise PartialFailure(readings, err.errors) from err
        return readings

    async def stream_stats(self, sink: ReadingSink) -> None:
        """``stats``, handing each device's readings to ``sink`` as soon as they are parsed:
        a round of 100 devices (some 20,000 readings) never holds all of them at once."""
        devices = [d for d in (await self._devicelist(utc_now())).devices if d.wants_stats]
        failed: dict[int, CollectorError] = {}

        bad_values: dict[int, list[ParseError]] = {}

        async def one(index: int, device: DeviceInfo) -> None:
            result = await self._device_stats(device)
            if isinstance(result, CollectorError):
                failed[index] = result
            else:
                sink(result[0])
                if result[1]:
                    bad_values[index] = result[1]

        await asyncio.gather(*(one(i, d) for i, d in enumerate(devices)))
        for part in [p for p in self._problems if p.startswith(STATS_PART_PREFIX)]:
            self._problems.pop(part)  # devices that left the list stop being problems
        errors = [self._failed(stats_part(devices[i].device_id), failed[i]) for i in sorted(failed)]
        errors += [
            f"{stats_part(devices[i].device_id)}: ParseError: {problem}"
            for i in sorted(bad_values)
            for problem in bad_values[i]
        ]
        if failed and len(failed) == len(devices):
            raise failed[min(failed)]
        if errors:
            raise PartialFailure((), errors)

    async def history(self, since: datetime, sink: HistorySink) -> None:
        """The box keeps only its own statistics window: one statistics round, one series
        per device (``stats:<device_id>``), each from ``max(since, sink.start(series))`` on.

        An ``energy_period_wh`` bucket is stamped at the start of its day or month, so the
        bucket of the period that contains the start (the still growing day or month among
        them) is kept although its stamp is older. A failing device costs only its series
        (``PartialFailure`` without readings); when every device fails, the first error.
        """
        since_utc = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        devices = [d for d in (await self._devicelist(utc_now())).devices if d.wants_stats]
        sink.total(len(devices))
        failed: dict[int, CollectorError] = {}

        async def one(index: int, device: DeviceInfo) -> None:
            series = stats_part(device.device_id)
            start = max(since_utc, sink.start(series))
            fetched_at = utc_now()
            result = await self._device_stats(device)
            if isinstance(result, CollectorError):
                failed[index] = result
                return
            sink.put(series, _since(result[0], start, self.tz), until=fetched_at)
            if result[1]:
                bad_values[index] = result[1]

        bad_values: dict[int, list[ParseError]] = {}
        await asyncio.gather(*(one(i, d) for i, d in enumerate(devices)))
        errors = [self._failed(stats_part(devices[i].device_id), failed[i]) for i in sorted(failed)]
        errors += [
            f"{stats_part(devices[i].device_id)}: ParseError: {problem}"
            for i in sorted(bad_values)
            for problem in bad_values[i]
        ]
        for i, device in enumerate(devices):
            if i not in failed:
                self._ok(stats_part(device.device_id))
        if failed and len(failed) == len(devices):
            raise failed[min(failed)]
        if errors:
            raise PartialFailure((), errors)

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
            if GET_VOIP_STATUS in self.tr064.missing_actions:
                # X_AVM-DE_GetVoIPStatus came to the X_VoIP service in 2021 (x_voip spec)
                parts.append(
                    "VoIP registration status: not offered by this firmware; "
                    "accounts and clients are read"
                )
        return ", ".join(parts)

    # --- parts --------------------------------------------------------------------------------

    async def _devicelist(self, now: datetime) -> DeviceList:
        try:
            devicelist = parse_devicelist(
                await self.client.get_devicelist(), site=self.name, time=now
            )
        except CollectorError as err:
            self._failed(PART_DEVICELIST, err)
            raise
        self._ok(PART_DEVICELIST)
        return devicelist

    async def _voip(self, now: datetime) -> tuple[Reading, ...]:
        snapshot = await self.tr064.voip()
        return voip_readings(
            snapshot.accounts,
            snapshot.clients,
            site=self.name,
            time=now,
            numbers_as_tags=self.config.voip_numbers_as_tags,
        )

    async def _device_stats(
        self, device: DeviceInfo
    ) -> tuple[tuple[Reading, ...], list[ParseError]] | CollectorError:
        """The device's readings and the bad values that cost only themselves, or the
        error that cost them all."""
        problems: list[ParseError] = []
        try:
            async with self._semaphore:
                body = await self.client.get_devicestats(device.device_id)
            readings = parse_devicestats(
                body,
                site=self.name,
                device_id=device.device_id,
                device=device.device_tag,
                fetched_at=utc_now(),
                tz=self.tz,
                tags=device.tags,
                problems=problems,
            )
        except CollectorError as err:
            return err
        return readings, problems


def _since(readings: Sequence[Reading], start: datetime, tz: tzinfo) -> list[Reading]:
    """The readings from ``start`` on, plus the energy buckets whose day or month contains
    ``start`` (stamped at the period's start, in the box's zone ``tz``)."""
    epoch = max(int(start.timestamp()), 0)
    firsts = {period.value: nz.period_start(epoch, period, 0, tz) for period in nz.EnergyPeriod}
    kept = []
    for r in readings:
        if r.time >= start:
            kept.append(r)
        elif r.measurement == "energy_period_wh":
            period = dict(r.tags).get("period")
            if period in firsts and r.time >= firsts[period]:
                kept.append(r)
    return kept


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
