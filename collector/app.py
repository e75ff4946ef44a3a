"""Building the collector from its config and running jobs: the thin fetch -> encode -> spool.

The scheduling of ``collector run`` lives in collector/daemon.py; ``once`` and ``check``
are here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collector.config import Config
from collector.delivery import Deliverer
from collector.errors import CollectorError, ConfigError, PartialFailure
from collector.lineprotocol import Encoder
from collector.model import Reading, make_tags, utc_now
from collector.sources.base import Source, SourceJob
from collector.spool import Spool
from collector.stores.base import Store

log = logging.getLogger(__name__)


def build_store(config: Config) -> Store:
    if config.store.kind == "sqlite" or config.influxdb is None:
        from collector.stores.sqlite import SqliteStore

        return SqliteStore(config.store.path)
    ic = config.influxdb
    if ic.api == "v2":
        from collector.stores.influx_v2 import InfluxV2Store

        assert ic.org and ic.bucket and ic.token
        return InfluxV2Store(
            ic.url, ic.org, ic.bucket, ic.token.get_secret_value(),
            timeout=ic.timeout, verify_tls=ic.verify_tls,
            ca_file=str(ic.ca_file) if ic.ca_file else None,
        )
    from collector.stores.influx_v1 import InfluxV1Store

    assert ic.database
    return InfluxV1Store(
        ic.url, ic.database, retention_policy=ic.retention_policy, username=ic.username,
        password=ic.password.get_secret_value() if ic.password else None,
        timeout=ic.timeout, verify_tls=ic.verify_tls,
        ca_file=str(ic.ca_file) if ic.ca_file else None,
    )


def build_sources(config: Config) -> list[Source]:
    sources: list[Source] = []
    for fc in config.fritzbox:
        if fc.enabled:
            from collector.sources.fritzbox.source import FritzboxSource

            sources.append(FritzboxSource(fc))
    for kind in ("thinknx", "overkiz"):
        if any(s.enabled for s in getattr(config, kind)):
            raise ConfigError(f"[[{kind}]] sources are not supported by this version yet")
    return sources


class _Chunk:
    """The lines of one job run, encoded part by part (one spool chunk).

    Only the joined text of each part is kept: a job that streams its readings (a
    statistics round: some 20,000 readings from 100 devices) never holds all its readings,
    nor one object per line, at once.
    """

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._parts: list[str] = []
        self.lines = 0
        self._error: CollectorError | None = None

    def add(self, readings: Sequence[Reading]) -> None:
        """A ``ReadingSink``. An encoding error is raised by ``text``: one reading that
        cannot be encoded costs the whole run, streamed or not."""
        if self._error is not None or not readings:
            return
        try:
            lines = self._encoder.encode_many(readings)
        except CollectorError as err:
            self._error = err
            return
        self._parts.append("\n".join(lines))
        self.lines += len(lines)

    def text(self) -> str:
        if self._error is not None:
            raise self._error
        return "\n".join(self._parts)


@dataclass
class JobOutcome:
    source: str
    job: str
    points: int = 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class App:
    """The collector's parts: sources, encoder, spool, deliverer, store."""

    def __init__(self, config: Config, *, sources: Sequence[Source] | None = None,
                 store: Store | None = None) -> None:
        self.config = config
        self.store = store if store is not None else build_store(config)
        self.sources = list(sources) if sources is not None else build_sources(config)
        self.spool = Spool(config.spool.path, max_lines=config.spool.max_lines)
        self.deliverer = Deliverer(
            self.spool, self.store, batch_lines=config.spool.batch_lines,
            max_backoff_s=config.spool.max_backoff, flush_interval_s=config.spool.flush_interval,
        )
        self.encoder = Encoder()
        self._last_state: dict[str, str | None] = {}
        self.outcomes: dict[str, JobOutcome] = {}

    async def aclose(self) -> None:
        for source in self.sources:
            try:
                await source.aclose()
            except Exception as err:  # closing must not stop the others
                log.warning("%s: error while closing: %s", source.label, err)
        await self.store.aclose()
        self.spool.close()

    def spool_readings(self, readings: Sequence[Reading]) -> int:
        chunk = _Chunk(self.encoder)
        chunk.add(readings)
        return self._spool(chunk)

    def _spool(self, chunk: _Chunk) -> int:
        self.spool.append_text(chunk.text(), chunk.lines)
        self.deliverer.wake()
        return chunk.lines

    async def run_job(self, source: Source, job: SourceJob) -> JobOutcome:
        """Fetch -> encode -> spool; errors are counted and logged once per state change."""
        key = f"{source.label}:{job.name}"
        outcome = JobOutcome(source.label, job.name)
        started = time.monotonic()
        readings: Sequence[Reading] = ()
        chunk = _Chunk(self.encoder)
        try:
            if job.stream is not None:
                await job.stream(chunk.add)  # readings are encoded as they arrive
            else:
                readings = await job.run()
        except PartialFailure as err:
            readings = err.readings  # type: ignore[assignment]
            outcome.errors.extend(err.errors)
        except CollectorError as err:
            outcome.errors.append(f"{type(err).__name__}: {err}")
        except Exception as err:  # a bug in one source must not stop the daemon
            log.exception("%s: unexpected error", key)
            outcome.errors.append(f"{type(err).__name__}: {err}")
        try:
            chunk.add(readings)
            outcome.points = self._spool(chunk)
        except CollectorError as err:
            outcome.errors.append(f"{type(err).__name__}: {err}")
        outcome.duration_s = time.monotonic() - started
        self._log_state(key, outcome)
        self.outcomes[key] = outcome
        self.spool_readings(self._job_metrics(source, job, outcome))
        return outcome

    def _log_state(self, key: str, outcome: JobOutcome) -> None:
        state = "; ".join(outcome.errors) if outcome.errors else None
        previous = self._last_state.get(key, None)
        if state != previous:
            if state is not None:
                log.warning("%s failed: %s", key, state)
            elif key in self._last_state:
                log.warning("%s works again", key)
        self._last_state[key] = state

    def _job_metrics(self, source: Source, job: SourceJob, outcome: JobOutcome) -> list[Reading]:
        now = utc_now()
        dev = f"{source.label}:{job.name}"
        return [
            Reading("collector", value, now, "collector", source.name, dev, dev,
                    make_tags(metric=metric))
            for metric, value in (
                ("duration_s", round(outcome.duration_s, 6)),
                ("points", float(outcome.points)),
                ("errors", float(len(outcome.errors))),
            )
        ]

    def spool_metrics(self, now: datetime | None = None) -> list[Reading]:
        st = self.spool.status()
        now = now or utc_now()
        return [
            Reading("collector", float(value), now, "collector", "collector", "spool", "spool",
                    make_tags(metric=metric))
            for metric, value in (
                ("backlog", st.pending),
                ("dead_letters", st.dead_letters),
                ("dropped_total", st.dropped_total),
                ("delivery_failures", self.deliverer.stats.failures),
            )
        ]

    async def once(self, *, flush_deadline_s: float = 120.0) -> list[JobOutcome]:
        """One run of every job of every source, then deliver everything to the store."""

        async def one_source(source: Source) -> list[JobOutcome]:
            return [await self.run_job(source, job) for job in source.jobs()]

        results = await asyncio.gather(*(one_source(s) for s in self.sources))
        self.spool_readings(self.spool_metrics())
        await self.deliverer.drain(deadline_s=flush_deadline_s)
        return [o for group in results for o in group]

    async def check(self) -> list[tuple[str, bool, str]]:
        rows: list[tuple[str, bool, str]] = []
        try:
            rows.append((f"store {self.store.name}", True, await self.store.check()))
        except CollectorError as err:
            rows.append((f"store {self.store.name}", False, f"{type(err).__name__}: {err}"))
        for source in self.sources:
            try:
                rows.append((source.label, True, await source.check()))
            except CollectorError as err:
                rows.append((source.label, False, f"{type(err).__name__}: {err}"))
        return rows
