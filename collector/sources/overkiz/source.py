"""The Overkiz source: setup once a day (cached on disk), live changes through one event
listener, per-device state reads at start and as a periodic fallback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from collector.config import OverkizConfig
from collector.errors import ConfigError, ParseError, PartialFailure, PermanentError
from collector.model import Reading
from collector.sources.base import HistorySink, Source, SourceJob
from collector.sources.overkiz.client import SERVERS, OverkizClient, api_base, device_segment
from collector.sources.overkiz.errors import OverkizListenerLost
from collector.sources.overkiz.history import (
    history_path,
    parse_history,
    when,
    window_count,
    windows,
)
from collector.sources.overkiz.limits import Category, RateLimiter
from collector.sources.overkiz.parse import (
    Device,
    State,
    parse_events,
    parse_setup,
    parse_states,
)
from collector.sources.overkiz.readings import RULES, reading, stamp

log = logging.getLogger(__name__)

#: /setup is a bulk-load operation: 1 call per day and session (spec: "Per-session rate-limit").
SETUP_MAX_AGE_S = 86_400.0


def _tls(config: OverkizConfig) -> ssl.SSLContext | bool:
    if config.ca_file is not None:
        try:
            return ssl.create_default_context(cafile=str(config.ca_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"overkiz {config.name}: cannot load ca_file {config.ca_file}: {err}"
            ) from err
    return bool(config.verify_tls)


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
        local = config.url is not None and config.token is not None
        base = api_base(config.url or SERVERS[config.server or ""], local=local)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(
            verify=_tls(config), timeout=httpx.Timeout(config.timeout)
        )
        self._setup_path = state_dir / f"overkiz-{config.name}.setup.json"
        limiter = RateLimiter(
            state_dir / f"overkiz-{config.name}.limits.json",
            slower={Category.POLLING: config.events_interval},
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
        )
        self._devices: dict[str, Device] | None = None
        self._listener: str | None = None
        if local:
            log.warning(
                "overkiz %s: the local API has no history endpoints; only live values are "
                "collected",
                config.name,
            )

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # --- setup ------------------------------------------------------------------------------

    async def devices(self) -> dict[str, Device]:
        """The account's devices: from the cache when younger than a day, else ``/setup``."""
        if self._devices is None:
            doc = self._cached_setup()
            if doc is None:
                doc = await self.client.request("GET", "/setup", category=Category.BULK_LOAD)
                self._store_setup(doc)
            self._devices = {d.url: d for d in parse_setup(doc)}
        return self._devices

    def _cached_setup(self) -> object | None:
        try:
            raw = json.loads(self._setup_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("overkiz %s: setup cache unreadable (%s)", self.name, exc)
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("fetched_at"), (int, float)):
            return None
        if time.time() - raw["fetched_at"] >= SETUP_MAX_AGE_S:
            return None
        return raw.get("setup")

    def _store_setup(self, doc: object) -> None:
        self._setup_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._setup_path.with_name(self._setup_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"fetched_at": time.time(), "setup": doc}, fh)
        os.replace(tmp, self._setup_path)

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
        out: list[Reading] = []
        for change in parse_events(doc):
            device = devices.get(change.device_url)
            if device is None:
                continue
            when = stamp(change.time_ms, now)
            out.extend(
                r for s in change.states if (r := reading(device, s, when, site=self.name))
            )
        return out

    async def read_states(self) -> Sequence[Reading]:
        """Every device's current states (at start and as fallback for lost events)."""
        devices = await self.devices()
        out: list[Reading] = []
        errors: list[str] = []
        for device in devices.values():
            path = f"/setup/devices/{device_segment(device.url)}/states"
            try:
                states = parse_states(await self.client.request("GET", path))
            except ParseError as exc:
                errors.append(f"{device.url}: {exc}")
                continue
            now = datetime.now(UTC)
            out.extend(r for s in states if (r := reading(device, s, now, site=self.name)))
        if errors:
            raise PartialFailure(out, errors)
        return out

    # --- history ----------------------------------------------------------------------------

    async def history(self, since: datetime, sink: HistorySink) -> None:
        """Each collected state of each device, window by window, from its watermark on."""
        if self.client.local:
            log.warning(
                "overkiz %s: the local API has no history endpoints; nothing to backfill",
                self.name,
            )
            return
        devices = await self.devices()
        end = datetime.now(UTC)
        series = [
            (f"{d.url} {s.name}", d, s.name)
            for d in devices.values()
            for s in d.states
            if s.name in RULES
        ]
        starts = {key: sink.start(key) for key, _, _ in series}
        sink.total(sum(window_count(starts[key], end) for key, _, _ in series))
        errors: list[str] = []
        for key, device, state in series:
            try:
                for low, high in windows(starts[key], end):
                    doc = await self.client.request(
                        "GET", history_path(device.url, state, low, high)
                    )
                    answer = parse_history(doc)
                    points = [
                        r
                        for ms, value in answer.values
                        if (
                            r := reading(
                                device,
                                State(state, value),
                                when(ms),
                                site=self.name,
                                measured_type=answer.unit,
                            )
                        )
                    ]
                    sink.put(key, points, until=high)
            except (ParseError, PermanentError) as exc:
                errors.append(f"{key}: {exc}")
        if errors:
            raise PartialFailure([], errors)

    def jobs(self) -> Sequence[SourceJob]:
        return (
            SourceJob("events", self.config.events_interval, self.poll),
            SourceJob("states", self.config.states_interval, self.read_states),
        )

    async def check(self) -> str:
        devices = await self.devices()
        mode = "local API (no history)" if self.client.local else "cloud"
        return f"{mode}, {len(devices)} devices"
