"""Building the collector from its config and running jobs: the thin fetch -> encode -> spool.

The scheduling of ``collector run`` lives in collector/pipeline/daemon.py; ``once`` and ``check``
are here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collector.config import Config
from collector.errors import CollectorError, PartialFailure
from collector.lineprotocol import Encoder
from collector.model import Reading, make_tags, utc_now
from collector.pipeline.chunk import Chunk
from collector.pipeline.clock import ClockGuard
from collector.pipeline.delivery import Deliverer
from collector.pipeline.job_errors import error_kinds, error_label
from collector.pipeline.rooms import room_map
from collector.pipeline.spool import Spool, SpoolUnwritable
from collector.sources.base import Source, SourceJob
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
    for tc in config.thinknx:
        if tc.enabled:
            from collector.sources.thinknx.source import ThinknxSource

            sources.append(ThinknxSource(tc))
    for oc in config.overkiz:
        if oc.enabled:
            from collector.sources.overkiz.source import OverkizSource

            sources.append(OverkizSource(oc, state_dir=config.spool.path.parent))
    return sources


@dataclass
class JobOutcome:
    source: str
    job: str
    points: int = 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: Readings that could not be encoded and were dropped (the rest was stored).
    dropped: int = 0
    #: The first encoding error per (measurement, device_id) among the dropped readings.
    drops: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def drop_note(self) -> str | None:
        """'2 unencodable readings dropped (button_time 0815: ...)', or None."""
        if not self.dropped:
            return None
        examples = "; ".join(f"{m} {d}: {e}" for (m, d), e in list(self.drops.items())[:3])
        noun = "reading" if self.dropped == 1 else "readings"
        return f"{self.dropped} unencodable {noun} dropped ({examples})"


class App:
    """The collector's parts: sources, encoder, spool, deliverer, store."""

    def __init__(self, config: Config, *, sources: Sequence[Source] | None = None,
                 store: Store | None = None, clock: ClockGuard | None = None) -> None:
        self.config = config
        #: job runs are made only while this machine's clock can be right (clock.py)
        self.clock = clock if clock is not None else ClockGuard()
        self.store = store if store is not None else build_store(config)
        self.sources = list(sources) if sources is not None else build_sources(config)
        self.spool = Spool(config.spool.path, max_lines=config.spool.max_lines)
        self.deliverer = Deliverer(
            self.spool, self.store, batch_lines=config.spool.batch_lines,
            max_backoff_s=config.spool.max_backoff, flush_interval_s=config.spool.flush_interval,
        )
        self.encoder = Encoder()
        self.rooms = room_map(config)
        #: Per job: the kinds of its errors, its drops (the state logged) and its error texts.
        self._last_state: dict[
            str, tuple[tuple[str, ...], frozenset[tuple[str, str]], tuple[str, ...]]] = {}
        self.outcomes: dict[str, JobOutcome] = {}
        #: Failed job runs per source label (gap healing: has the source failed since?).
        self.failed_runs: Counter[str] = Counter()

    async def aclose(self) -> None:
        for source in self.sources:
            try:
                await source.aclose()
            except Exception as err:  # closing must not stop the others
                log.warning("%s: error while closing: %s", source.label, err)
        await self.store.aclose()
        self.spool.close()

    def spool_readings(self, readings: Sequence[Reading]) -> int:
        """Encode and spool ``readings``; return the lines spooled."""
        return self.spool_counted(readings)[0]

    def spool_counted(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """``spool_readings``, also returning how many unencodable readings were dropped."""
        chunk = Chunk(self.encoder, self.rooms)
        chunk.add(readings)
        if chunk.dropped:
            log.warning("%d unencodable readings dropped: %s", chunk.dropped,
                        "; ".join(f"{m} {d}: {e}" for (m, d), e in chunk.drops.items()))
        return self._spool(chunk), chunk.dropped

    def _spool(self, chunk: Chunk) -> int:
        self.spool.append_text(chunk.body(), chunk.lines)
        self.deliverer.wake()
        return chunk.lines

    async def run_job(self, source: Source, job: SourceJob) -> JobOutcome:
        """Fetch -> encode -> spool; errors are counted and logged once per state change.

        A run cancelled midway (a job still running when the collector stops) spools what
        it streamed so far and counts as failed ("cancelled") before the cancellation goes on.
        While this machine's clock lies before the collector was built (not set yet), no
        run is made: the run counts as failed and writes nothing.
        """
        outcome = JobOutcome(source.label, job.name)
        if not self.clock.plausible(datetime.now(UTC)):  # said once by the guard
            outcome.errors.append("clock not set: this machine's clock lies before the "
                                  "collector was built")
            self.failed_runs[source.label] += 1
            self.outcomes[f"{source.label}:{job.name}"] = outcome
            return outcome
        started = time.monotonic()
        readings: Sequence[Reading] = ()
        chunk = Chunk(self.encoder, self.rooms)
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
        except asyncio.CancelledError:
            outcome.errors.append("cancelled: still running when the collector stopped")
            await self._finish(source, job, outcome, chunk, (), started)
            raise
        except Exception as err:  # a bug in one source must not stop the daemon
            log.exception("%s:%s: unexpected error", source.label, job.name)
            outcome.errors.append(f"{type(err).__name__}: {err}")
        return await self._finish(source, job, outcome, chunk, readings, started)

    async def _finish(self, source: Source, job: SourceJob, outcome: JobOutcome, chunk: Chunk,
                      readings: Sequence[Reading], started: float) -> JobOutcome:
        """Spool the run's lines and its self-metrics as one chunk (one commit, made on the
        spool's thread: the event loop goes on with other jobs meanwhile).

        A spool that cannot take them (a full disk, a write error, a thread that does not
        answer in time) fails the run; the spool counts its lines as lost, and the first run
        it takes again also spools that count (``dropped`` with the reason).
        """
        key = f"{source.label}:{job.name}"
        chunk.add(readings)
        outcome.dropped, outcome.drops = chunk.dropped, chunk.drops
        outcome.points = chunk.lines
        outcome.duration_s = time.monotonic() - started
        chunk.add(self._job_metrics(source, job, outcome))
        if await self._append(chunk, outcome):
            await self._spool_lost()
        if not outcome.ok:
            self.failed_runs[source.label] += 1
        self._log_state(key, outcome)
        self.outcomes[key] = outcome
        return outcome

    async def _append(self, chunk: Chunk, outcome: JobOutcome | None = None) -> bool:
        """Hand ``chunk`` to the spool; False (and the error in ``outcome``) if it could not
        take it."""
        try:
            await self.spool.append_text_async(chunk.body(), chunk.lines)
        except SpoolUnwritable as err:  # logged once by the spool, its lines counted there
            if outcome is not None:
                outcome.points = 0
                outcome.errors.append(f"{type(err).__name__}: {err}")
            return False
        self.deliverer.wake()
        return True

    async def _spool_lost(self) -> None:
        """Spool the count of the lines lost while the spool could not take any, if any."""
        lost = self.spool.health.take_lost()
        if not lost:
            return
        chunk = Chunk(self.encoder, self.rooms)
        chunk.add(self.lost_metrics(lost))
        if not await self._append(chunk):
            self.spool.health.give_back(lost)

    def lost_metrics(self, lost: dict[str, int], now: datetime | None = None) -> list[Reading]:
        """``dropped`` of the spool, by reason: lines of job runs the spool could not take."""
        now = now or utc_now()
        return [
            Reading("collector", float(n), now, "collector", "collector", "spool", "spool",
                    make_tags(metric="dropped", reason=reason))
            for reason, n in sorted(lost.items())
        ]

    async def spool_metrics_async(self) -> None:
        """``spool_metrics`` to the spool from the event loop (the daemon's job): nothing
        while the clock is not set; never waits longer than the spool's hand-over bound."""
        if not self.clock.plausible(datetime.now(UTC)):
            return
        chunk = Chunk(self.encoder, self.rooms)
        chunk.add(self.spool_metrics())
        if await self._append(chunk):
            await self._spool_lost()

    def _log_state(self, key: str, outcome: JobOutcome) -> None:
        """Log a job's failures and drops when they change, not on every run.

        A failure stays the same state while its errors are of the same kinds (job_errors:
        a Retry-After, a countdown or a time in the text is no new failure; a new text of
        the same kind is logged at DEBUG). Drops count as the same state while the same
        (measurement, device) pairs are dropped, whatever their number or values.
        """
        texts = tuple(outcome.errors)
        state = (error_kinds(texts), frozenset(outcome.drops))
        last = self._last_state.get(key)
        previous = last[:2] if last is not None else None
        if state != previous:
            if outcome.errors:
                log.warning("%s failed: %s", key, "; ".join(outcome.errors))
            if outcome.dropped:
                log.warning("%s: %s", key, outcome.drop_note())
            if not outcome.errors and not outcome.dropped and previous is not None:
                log.warning("%s works again", key)
        elif last is not None and texts != last[2]:
            log.debug("%s still failing: %s", key, "; ".join(texts))
        self._last_state[key] = (*state, texts)

    def _job_metrics(self, source: Source, job: SourceJob, outcome: JobOutcome) -> list[Reading]:
        """duration_s, points and errors of every run; dropped only for a run that dropped
        readings (a dashboard reads a missing value as 0). The errors point of a failed run
        carries its error text (redacted, one line) as ``label`` for ``collector check``.
        The time is the run's end to the millisecond: runs of a 1-s job never share one."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        dev = f"{source.label}:{job.name}"
        metrics = [("duration_s", round(outcome.duration_s, 6)),
                   ("points", float(outcome.points)),
                   ("errors", float(len(outcome.errors)))]
        if outcome.dropped:
            metrics.append(("dropped", float(outcome.dropped)))
        label = error_label(outcome.errors) if outcome.errors else None
        return [
            Reading("collector", value, now, "collector", source.name, dev, dev,
                    make_tags(metric=metric), label if metric == "errors" else None)
            for metric, value in metrics
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
