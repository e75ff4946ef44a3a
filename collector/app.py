"""Building the collector from its config and running jobs: the thin fetch -> encode -> spool.

The scheduling of ``collector run`` lives in collector/daemon.py; ``once`` and ``check``
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
from typing import NamedTuple, cast

from collector.config import Config
from collector.delivery import Deliverer
from collector.errors import CollectorError, EncodeError, PartialFailure
from collector.job_errors import error_kinds, error_label
from collector.lineprotocol import Encoder
from collector.model import Again, Reading, ReadingBatch, make_tags, utc_now
from collector.rooms import RoomMap, room_map
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
    for tc in config.thinknx:
        if tc.enabled:
            from collector.sources.thinknx.source import ThinknxSource

            sources.append(ThinknxSource(tc))
    for oc in config.overkiz:
        if oc.enabled:
            from collector.sources.overkiz.source import OverkizSource

            sources.append(OverkizSource(oc, state_dir=config.spool.path.parent))
    return sources


class _Kept(NamedTuple):
    """What a chunk encoder made of the readings of an ``Again``: the lines of those taking
    the poll's time, without their timestamp; the whole lines of those keeping their own;
    (measurement, device_id, error) of those it could not encode; for each reading of the
    template, the place of its line in ``polled`` (-1: none there) and the series part of
    its line when it is a plain value (None: a state, with a label), for writing a new
    value to the same series without looking the series up again."""

    polled: tuple[str, ...]
    own: tuple[str, ...]
    drops: tuple[tuple[str, str, str], ...]
    at: tuple[int, ...]
    series: tuple[str | None, ...]


class Chunk:
    """The lines of one job run, encoded part by part (one spool chunk).

    Only the joined text of each part is kept: a job that streams its readings (a
    statistics round: some 20,000 readings from 100 devices) never holds all its readings,
    nor one object per line, at once. A reading that cannot be encoded (a parser let
    through what line protocol cannot carry, e.g. a time after 2262) is dropped and
    counted; it costs only itself, never the rest of the run.
    """

    def __init__(self, encoder: Encoder, rooms: RoomMap | None = None) -> None:
        self._encoder = encoder
        self._rooms = rooms
        #: what this encoder keeps in an ``Again``'s memo: its text, and of its fresh readings
        self._key = (encoder, rooms)
        self._fresh_key = (encoder, rooms, "fresh")
        #: the poll time of the last ``Again``, its timestamp text, and that with a newline
        self._time: datetime | None = None
        self._suffix = self._between = ""
        self._parts: list[str] = []
        self.lines = 0
        self.dropped = 0
        #: The first encoding error per (measurement, device_id) of the dropped readings.
        self.drops: dict[tuple[str, str], str] = {}

    def add(self, readings: Sequence[Reading]) -> None:
        """A ``ReadingSink``: never raises for a reading it cannot encode."""
        if type(readings) is ReadingBatch:
            key, out = self._key, self._parts
            for part in readings.parts:
                if type(part) is not Again:
                    self.add(cast(Sequence[Reading], part))
                    continue
                kept = cast("_Kept | None", part.memo.get(key))
                if kept is None or part.fresh or kept.own or kept.drops or not kept.polled or (
                        part.time is not self._time):
                    self._again(part)
                    continue
                # the usual device given again: its kept lines at this poll's time
                out.append(self._between.join(kept.polled) + self._suffix)
                self.lines += len(kept.polled)
            return
        if not readings:
            return
        if self._rooms:
            # the one place where every reading gets its house-wide room (collector/rooms.py)
            readings = self._rooms.apply(readings)
        try:
            lines = self._encoder.encode_many(readings)
        except EncodeError:
            lines = self._encode_one_by_one(readings)
        if lines:
            self._parts.append("\n".join(lines))
            self.lines += len(lines)

    def _again(self, part: Again) -> None:
        """Readings given again at a new poll time: the text made of them at an earlier
        poll (kept in ``part.memo``, rooms applied), with the new timestamp."""
        if part.time is not self._time:  # the parts of one poll share their time
            try:
                suffix = self._encoder.suffix(part.time)
            except EncodeError:  # a time line protocol cannot carry: each reading is counted
                self._add_one_by_one(part.readings())
                return
            self._time, self._suffix, self._between = part.time, suffix, suffix + "\n"
        kept = cast("_Kept | None", part.memo.get(self._key))
        if kept is None:
            kept = self._keep(part.template)
            part.memo[self._key] = kept
        polled: Sequence[str] = kept.polled
        if part.fresh:
            made = self._fresh(part, kept)
            if made is None:  # a fresh value the encoder refuses: each reading is counted
                self._add_one_by_one(part.readings())
                return
            polled = made
        if polled:
            self._parts.append(self._between.join(polled) + self._suffix)
        if kept.own:
            self._parts.append("\n".join(kept.own))
        self.lines += len(polled) + len(kept.own)
        for measurement, device_id, error in kept.drops:
            self.dropped += 1
            self.drops.setdefault((measurement, device_id), error)

    def _fresh(self, part: Again, kept: _Kept) -> tuple[str, ...] | None:
        """The lines of ``part`` taking the poll's time (without their timestamp), from
        ``kept`` but those at its ``fresh`` positions made anew; None when one of those
        cannot be encoded. What is made is kept too, for as long as the same template is
        given again (a device unchanged since its meter last changed)."""
        last = cast("tuple[object, tuple[str, ...]] | None", part.memo.get(self._fresh_key))
        if last is not None and last[0] is part.template:
            return last[1]
        polled, at, series, template = list(kept.polled), kept.at, kept.series, part.template
        for i in part.fresh:
            if at[i] < 0:
                return None
            reading = template[i][0]
            if (prefix := series[i]) is not None and reading.label is None:
                polled[at[i]] = f"{prefix} value={reading.value!r}"  # as Encoder.body
                continue
            if self._rooms:
                reading = self._rooms.apply([reading])[0]
            try:
                polled[at[i]] = self._encoder.body(reading)
            except EncodeError:
                return None
        made = tuple(polled)
        part.memo[self._fresh_key] = (part.template, made)
        return made

    def _keep(self, template: tuple[tuple[Reading, bool], ...]) -> _Kept:
        readings: Sequence[Reading] = [r for r, _ in template]
        if self._rooms:
            readings = self._rooms.apply(readings)
        polled: list[str] = []
        own: list[str] = []
        drops: list[tuple[str, str, str]] = []
        at: list[int] = []
        series: list[str | None] = []
        for r, (_, at_poll) in zip(readings, template, strict=True):
            at.append(len(polled) if at_poll else -1)
            series.append(None)
            try:
                if at_poll:
                    polled.append(self._encoder.body(r))
                    if r.label is None:
                        series[-1] = self._encoder.prefix(r)
                else:
                    own.append(self._encoder.encode(r))
            except EncodeError as err:
                at[-1] = -1
                drops.append((r.measurement, r.device_id, str(err)))
        return _Kept(tuple(polled), tuple(own), tuple(drops), tuple(at), tuple(series))

    def _add_one_by_one(self, readings: Sequence[Reading]) -> None:
        lines = self._encode_one_by_one(readings)
        if lines:
            self._parts.append("\n".join(lines))
            self.lines += len(lines)

    def _encode_one_by_one(self, readings: Sequence[Reading]) -> list[str]:
        lines: list[str] = []
        for r in readings:
            try:
                lines.append(self._encoder.encode(r))
            except EncodeError as err:
                self.dropped += 1
                self.drops.setdefault((r.measurement, r.device_id), str(err))
        return lines

    def text(self) -> str:
        return "\n".join(self._parts)

    def body(self) -> bytes:
        """``text`` as UTF-8, encoded part by part: a part of ASCII alone (most devices)
        is copied as it is, while the text as a whole, once one name has an umlaut, would
        be encoded character by character (five times the time)."""
        return b"\n".join([part.encode("utf-8") for part in self._parts])


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
        """
        outcome = JobOutcome(source.label, job.name)
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
        spool's thread: the event loop goes on with other jobs meanwhile)."""
        key = f"{source.label}:{job.name}"
        chunk.add(readings)
        outcome.dropped, outcome.drops = chunk.dropped, chunk.drops
        outcome.points = chunk.lines
        outcome.duration_s = time.monotonic() - started
        chunk.add(self._job_metrics(source, job, outcome))
        try:
            await self.spool.append_text_async(chunk.body(), chunk.lines)
            self.deliverer.wake()
        except CollectorError as err:
            outcome.points = 0
            outcome.errors.append(f"{type(err).__name__}: {err}")
            self.spool_readings(self._job_metrics(source, job, outcome))
        if not outcome.ok:
            self.failed_runs[source.label] += 1
        self._log_state(key, outcome)
        self.outcomes[key] = outcome
        return outcome

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
