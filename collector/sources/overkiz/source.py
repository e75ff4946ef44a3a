"""The Overkiz source: setup once a day (cached on disk), live changes through one event
listener, per-device state reads at start and as a periodic fallback.

A state read is stamped with the state's own ``lastUpdateTime`` (spec: "GET Device states")
and written only when that time moved since the last read: a sensor that stopped reporting
is not written as a fresh, flat line. An unavailable device (``available: false`` in the
setup, ``core:StatusState`` "unavailable") gives no fresh readings; its availability is the
``present`` state, written at every read.

An endpoint the server does not offer ("No such resource") switches its feature off for the
site until the next start, with one warning; the other jobs go on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import httpx

from collector.config import OverkizConfig
from collector.config_sources import OVERKIZ_SERVERS as SERVERS
from collector.errors import ParseError, PartialFailure, PermanentError, TransientError
from collector.model import Reading
from collector.sources.base import HistorySink, Source, SourceJob
from collector.sources.overkiz.client import OverkizClient, api_base, device_segment
from collector.sources.overkiz.energy import meters, period_readings
from collector.sources.overkiz.errors import (
    OverkizListenerLost,
    OverkizNotOffered,
    OverkizRateLimited,
)
from collector.sources.overkiz.history import history_path, ms, read_series
from collector.sources.overkiz.limits import Category, RateLimiter
from collector.sources.overkiz.parse import (
    Device,
    State,
    parse_events,
    parse_setup,
    parse_states,
    parse_timezone,
)
from collector.sources.overkiz.periods import GROWING_PATH
from collector.sources.overkiz.readings import RULES, STATUS_STATE, availability, reading, stamp
from collector.sources.overkiz.setup_cache import SETUP_MAX_AGE_S, SetupCache
from collector.sources.overkiz.units import VENDOR
from collector.sources.zones import site_timezone
from collector.tls import verify_for

log = logging.getLogger(__name__)

#: After a setup load that got no answer, the next try waits this long, doubling up to the
#: maximum (the jobs that need the setup run every few seconds).
SETUP_RETRY_S = 30.0
SETUP_RETRY_MAX_S = 600.0

#: The features an endpoint the server may not offer stands for.
HISTORY = "state history"
PERIODS = "energy per day and month (growing index variations)"


def _tls(config: OverkizConfig) -> ssl.SSLContext | bool:
    """The server's certificate check: the default trust store shared with the other
    clients; a url on plain HTTP loads no CA bundle (collector/tls.py)."""
    url = config.url or SERVERS[config.server or ""]
    return verify_for(f"overkiz {config.name}", (url,), verify_tls=config.verify_tls,
                      ca_file=config.ca_file)


class OverkizSource(Source):
    kind = "overkiz"

    def __init__(
        self,
        config: OverkizConfig,
        *,
        state_dir: Path,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(config.name, config.interval)
        self.config = config
        local = config.token is not None  # a token selects the local API (config.py)
        base = api_base(config.url or SERVERS[config.server or ""], local=local)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(
            verify=_tls(config), timeout=httpx.Timeout(config.timeout)
        )
        self._setup_cache = SetupCache(state_dir / f"overkiz-{config.name}.setup.json", base)
        limiter = RateLimiter(
            state_dir / f"overkiz-{config.name}.limits.json",
            slower={Category.POLLING: config.events_interval},
            scope=base,
        )
        self.client = OverkizClient(
            base,
            self._http,
            limiter,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            token=config.token.get_secret_value() if config.token else None,
            local=local,
            sleep=asyncio.sleep,
            # the configured timeout: one hanging request never holds a job for longer
            timeout=httpx.Timeout(config.timeout),
        )
        self._devices: dict[str, Device] | None = None
        self._setup_at = 0.0
        self._site_zone: str | None = None
        self._listener: str | None = None
        # The events, states and periods jobs start together: one of them loads the setup,
        # the others wait for it (a second load would be refused for the day, bulk-load).
        self._setup_lock = asyncio.Lock()
        self._setup_retry_at = 0.0
        self._setup_retry_s = SETUP_RETRY_S
        #: Features switched off because the server does not offer them, with the answer.
        self.off: dict[str, str] = {}
        #: The ``lastUpdateTime`` written last per (device URL, state).
        self._written: dict[tuple[str, str], int] = {}
        if local:
            log.info(
                "overkiz %s: the local API has no history endpoints; only live values are "
                "collected",
                config.name,
            )

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # --- setup ------------------------------------------------------------------------------

    async def devices(self) -> dict[str, Device]:
        """The account's devices: kept (in memory and in the disk cache) for a day, then
        loaded again through ``/setup``; a refused reload keeps the devices known so far."""
        async with self._setup_lock:
            return await self._load_devices()

    async def _load_devices(self) -> dict[str, Device]:
        now = time.time()
        if self._devices is not None and now - self._setup_at < SETUP_MAX_AGE_S:
            return self._devices
        cached = self._setup_cache.read(now)
        if cached is not None:
            doc, fetched_at = cached
        else:
            wait = self._setup_retry_at - time.monotonic()
            if wait > 0:
                if self._devices is not None:
                    return self._devices
                raise TransientError(f"the setup load failed; next try in {wait:.0f} s",
                                     retry_after=wait)
            try:
                doc = await self.client.request("GET", "/setup", category=Category.BULK_LOAD)
            except OverkizRateLimited:
                if self._devices is None:
                    raise
                log.warning("overkiz %s: setup reload refused for rate; keeping it", self.name)
                return self._devices
            except TransientError as exc:
                self._setup_retry_at = time.monotonic() + self._setup_retry_s
                log.warning("overkiz %s: setup load failed (%s); next try in %.0f s",
                            self.name, exc, self._setup_retry_s)
                self._setup_retry_s = min(self._setup_retry_s * 2, SETUP_RETRY_MAX_S)
                if self._devices is not None:
                    return self._devices
                raise
            self._setup_retry_s = SETUP_RETRY_S
            fetched_at = now
            self._setup_cache.write(doc, fetched_at)
        parsed = parse_setup(doc)
        for problem in parsed.problems:
            log.warning("overkiz %s: setup: skipped %s", self.name, problem)
        self._devices = {d.url: d for d in parsed.items}
        self._setup_at = fetched_at
        self._site_zone = parse_timezone(doc)
        return self._devices

    @property
    def timezone(self) -> tzinfo:
        """Where days and months begin: the configured zone, else the setup's location,
        else this machine's (UTC when it cannot be told)."""
        return site_timezone(self.config.timezone, self._site_zone, vendor=VENDOR)

    def setup_age_s(self) -> float | None:
        """Age of the cached setup in seconds; None when there is none."""
        cached = self._setup_cache.read(time.time(), max_age_s=float("inf"))
        return None if cached is None else time.time() - cached[1]

    # --- live values ------------------------------------------------------------------------

    async def poll(self) -> Sequence[Reading]:
        """New state changes from the event listener (registered on first use)."""
        devices = await self.devices()
        if self._listener is None:
            answer = await self.client.request("POST", "/events/register")
            if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
                raise ParseError("listener registration without an id", part="events/register")
            self._listener = answer["id"]
        try:
            doc = await self.client.request(
                "POST", f"/events/{self._listener}/fetch", category=Category.POLLING
            )
        except OverkizListenerLost:
            log.info("overkiz %s: event listener lost; registering a new one", self.name)
            self._listener = None
            raise
        now = datetime.now(UTC)
        parsed = parse_events(doc)
        out: list[Reading] = []
        for change in parsed.items:
            device = devices.get(change.device_url)
            if device is None:
                continue
            at = stamp(change.time_ms, now)
            out.extend(r for s in change.states if (r := reading(device, s, at, site=self.name)))
        if parsed.problems:
            raise PartialFailure(out, [f"ParseError: {p}" for p in parsed.problems])
        return out

    async def read_states(self) -> Sequence[Reading]:
        """Every device's states that changed since the last read, at their own time, and
        every device's availability (at start and as fallback for lost events)."""
        devices = await self.devices()
        out: list[Reading] = []
        errors: list[str] = []
        for device in devices.values():
            path = f"/setup/devices/{device_segment(device.url)}/states"
            try:
                parsed = parse_states(await self.client.request("GET", path), device.url)
            except (ParseError, PermanentError) as exc:
                errors.append(f"{device.url}: {type(exc).__name__}: {exc}")
                continue
            errors.extend(f"ParseError: {p}" for p in parsed.problems)
            out.extend(self._fresh(device, parsed.items, datetime.now(UTC)))
        if errors:
            raise PartialFailure(out, errors)
        return out

    def _fresh(self, device: Device, states: Sequence[State], now: datetime) -> list[Reading]:
        status = next((s.value for s in states if s.name == STATUS_STATE), None)
        available = device.available if not isinstance(status, str) else status != "unavailable"
        out = [availability(device, available, now, site=self.name)]
        for state in states:
            if state.name == STATUS_STATE:
                continue
            key = (device.url, state.name)
            if state.updated_ms is None:
                if not available:
                    continue  # nothing tells when an unavailable device's value is from
                at = now
            elif self._written.get(key) == state.updated_ms:
                continue  # not updated since the last read
            else:
                at = min(stamp(state.updated_ms, now), now)
            point = reading(device, state, at, site=self.name)
            if point is not None:
                out.append(point)
                if state.updated_ms is not None:
                    self._written[key] = state.updated_ms
        return out

    # --- history ----------------------------------------------------------------------------

    def _switch_off(self, feature: str, err: OverkizNotOffered) -> None:
        if feature not in self.off:
            log.warning("overkiz %s: the server does not offer the %s (%s); off for this site "
                        "until the next start", self.name, feature, err)
        self.off[feature] = str(err)

    async def history(self, since: datetime, sink: HistorySink) -> None:
        """Each collected state of each device from its watermark on, in pages of up to
        ``LIMIT`` values; then each meter's energy per local day and month (energy.py)."""
        if self.client.local:
            log.warning(
                "overkiz %s: the local API has no history endpoints; nothing to backfill",
                self.name,
            )
            return
        if not self.config.history:
            log.info("overkiz %s: history = false; nothing to backfill", self.name)
            return
        devices = await self.devices()
        end = datetime.now(UTC)
        series = [
            (f"{d.url} {s.name}", d, s.name)
            for d in devices.values()
            for s in d.states
            if s.name in RULES
        ]
        wanted = [(m, min(sink.start(m.key), end)) for m in meters(list(devices.values()))]
        sink.total(len(series) + (1 if wanted else 0))
        errors: list[str] = []
        for key, device, state in series if HISTORY not in self.off else ():
            try:
                await read_series(self.client, key, device, state, end, sink, site=self.name)
            except OverkizNotOffered as exc:
                self._switch_off(HISTORY, exc)
                break
            except (ParseError, PermanentError) as exc:
                errors.append(f"{key}: {type(exc).__name__}: {exc}")
        if wanted and PERIODS not in self.off:
            try:
                found = await period_readings(self.client, wanted, end, self.timezone,
                                              site=self.name)
            except OverkizNotOffered as exc:
                self._switch_off(PERIODS, exc)
            except (ParseError, PermanentError) as exc:
                errors.append(f"energy per day and month: {type(exc).__name__}: {exc}")
            else:
                for meter, _ in wanted:
                    sink.put(meter.key, found[meter.key], until=end)
        if errors:
            raise PartialFailure([], errors)

    async def read_periods(self) -> Sequence[Reading]:
        """The running day's and month's energy of every meter (growing as the period goes)."""
        if self.client.local or PERIODS in self.off:  # the local API has no growing indexes
            return []
        devices = await self.devices()
        now = datetime.now(UTC)
        wanted = [(m, now) for m in meters(list(devices.values()))]
        if not wanted:
            return []
        try:
            found = await period_readings(self.client, wanted, now, self.timezone,
                                          site=self.name)
        except OverkizNotOffered as exc:
            self._switch_off(PERIODS, exc)
            return []
        return [r for rs in found.values() for r in rs]

    @property
    def keeps_history(self) -> bool:
        """The cloud keeps state history; the local API has none, and ``history = false``
        asks for none."""
        return not self.client.local and self.config.history

    def jobs(self) -> Sequence[SourceJob]:
        return (
            SourceJob("events", self.config.events_interval, self.poll),
            SourceJob("states", self.config.interval, self.read_states),
            SourceJob("periods", self.config.interval, self.read_periods),
        )

    def mode(self) -> str:
        """Which API this config selects, in words (``collector check``, docs/overkiz.md)."""
        host = self.client.base.split("/enduser-mobile-web", 1)[0]
        if self.client.local:
            return f"local API of the gateway {host} (bearer token; no history)"
        history = "history" if self.config.history else "history = false"
        return f"cloud API {host} (login as {self.config.username}; {history})"

    async def check(self) -> str:
        """The mode, the devices and a state read that proves the credentials; when the
        next setup load is allowed; on the cloud, whether the server offers the state history
        and the growing index variations (one small request each).

        ``/setup`` is loaded only when the cached copy is older than the day the server
        allows between two loads (or missing); otherwise the cache is used."""
        devices = await self.devices()
        first = next(iter(devices.values()), None)
        if first is not None:
            await self.client.request("GET", f"/setup/devices/{device_segment(first.url)}/states")
        elif not self.client.local:
            await self.client.login()
        age = self.setup_age_s()
        loaded = "just loaded" if age is None or age < 60 else f"cached {age / 3600:.1f} h ago"
        wait = self.client.next_allowed_s(Category.BULK_LOAD)
        after = f"in {wait / 3600:.1f} h" if wait > 0 else "now"
        text = f"{self.mode()}, {len(devices)} devices (setup {loaded}; next load allowed {after})"
        if not self.client.local:
            await self._probe(list(devices.values()))
        if self.off:
            text += "; not offered by this server: " + ", ".join(sorted(self.off))
        return text

    async def _probe(self, devices: list[Device]) -> None:
        """Ask the optional endpoints once, about as little as they allow."""
        now = ms(datetime.now(UTC))
        historised = next(((d, s.name) for d in devices for s in d.states if s.name in RULES),
                          None)
        try:
            if historised is not None and self.config.history:
                device, state = historised
                await self.client.request("GET", history_path(device.url, state, now - 1, now))
        except OverkizNotOffered as exc:
            self._switch_off(HISTORY, exc)
        try:
            await self.client.request("POST", GROWING_PATH, json_body=[])
        except OverkizNotOffered as exc:
            self._switch_off(PERIODS, exc)
