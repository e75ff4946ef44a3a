"""Resampled exports from the hourly rollups (collector/stores/rollups.py), where they
give the same numbers as the raw points, faster.

``--resample 1h`` or coarser on InfluxDB 1.x with the rollups set up reads them: a gauge's
interval mean is ``sum / count`` of its hours (the mean of the raw points, not a mean of
means), a counter's and a state's last reading is the last of its hours' last, period
totals are copied as written and summed as from raw data. The raw points are read instead
where the rollup cannot give the same numbers:

* intervals that are not whole UTC hours: a time zone whose offset is not whole hours
  (India, Nepal, parts of Australia) at the range's ends;
* the parts of the range before the first and after the last whole interval, and the last
  3 hours plus the interval they fall in (a continuous query brings them in late);
* a range the rollup does not cover (set up later than the raw data came, and not filled
  with ``collector store fill``): the first hour with raw data must be in the rollup.

Every part is resampled on its own, and parts meet on interval boundaries, so no interval
mixes the two.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from collector.config import Config, InfluxConfig
from collector.outputs.export_shape import Buckets, resample
from collector.schema import BY_NAME, Kind
from collector.stores.read import (
    Row,
    Selection,
    quote_measurement,
    read,
    series_key,
    tls_for,
    v1_chunks,
    v1_where,
)
from collector.stores.rollups import ROLLUP_RP, rollups

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
#: How far back the continuous queries look: newer data is read raw.
RECENT_NS = 3 * _HOUR_NS
#: Every field of a rollup: the other columns of ``SELECT *`` are tags.
_ROLLUP_FIELDS = frozenset(out for r in rollups() for _, _, out in r.fields)


def resampled(config: Config, measurement: str, sel: Selection, step: int, tz: tzinfo,
              *, now_ns: int | None = None) -> Iterator[Row]:
    """The rows of ``--resample`` (the kind's aggregate per interval), from the rollup
    where it gives the same numbers, else from the raw points."""
    now = time.time_ns() if now_ns is None else now_ns
    split = _split(config, measurement, sel, step, tz, now)
    if split is None:
        return resample(measurement, read(config, measurement, sel), step, tz)
    lo, hi = split
    return _parts(config, measurement, sel, step, tz, lo, hi)


def _parts(config: Config, measurement: str, sel: Selection, step: int, tz: tzinfo,
           lo: int, hi: int) -> Iterator[Row]:
    ic = config.influxdb
    assert ic is not None
    if sel.start is None or sel.start < lo:
        yield from resample(measurement, read(config, measurement, replace(sel, end=lo)),
                            step, tz)
    yield from _from_rollup(ic, measurement, replace(sel, start=lo, end=hi), step, tz)
    if sel.end is None or sel.end > hi:
        yield from resample(measurement, read(config, measurement, replace(sel, start=hi)),
                            step, tz)


def _whole_hours(tz: tzinfo, *times_ns: int) -> bool:
    for ns in times_ns:
        offset = datetime.fromtimestamp(ns // _NS, tz).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True


def _split(config: Config, measurement: str, sel: Selection, step: int, tz: tzinfo,
           now: int) -> tuple[int, int] | None:
    """``[lo, hi)``: the whole intervals the rollup answers, or None (all raw)."""
    ic = config.influxdb
    if config.store.kind != "influxdb" or ic is None or ic.api != "v1" or step % 3600:
        return None
    buckets = Buckets(step, tz)
    first = _first_time(ic, measurement, sel, rollup=False)
    if first is None:
        return None  # nothing there: raw answers as fast
    start = max(first, sel.start) if sel.start is not None else first
    lo = buckets.start_of(start)
    if lo < start:
        lo = buckets.end_of(start)
    recent = now - RECENT_NS
    hi = buckets.start_of(recent if sel.end is None else min(sel.end, recent))
    if sel.end is not None and sel.end < recent and buckets.start_of(sel.end) == sel.end:
        hi = sel.end
    if hi <= lo or not _whole_hours(tz, lo, hi):
        return None
    from collector.stores.setup_v1 import has_rollups

    if not has_rollups(ic):
        return None
    covered = _first_time(ic, measurement, replace(sel, start=lo, end=hi), rollup=True)
    raw_first = _first_time(ic, measurement, replace(sel, start=lo, end=hi), rollup=False)
    if raw_first is not None and (covered is None or covered > raw_first - raw_first % _HOUR_NS):
        return None
    return lo, hi


def _source(measurement: str, rollup: bool) -> str:
    name = quote_measurement(measurement)
    return f"{quote_measurement(ROLLUP_RP)}.{name}" if rollup else name


def _first_time(ic: InfluxConfig, measurement: str, sel: Selection, *, rollup: bool
                ) -> int | None:
    """The time of the first point in ``sel`` (raw or rollup), or None."""
    field = "count" if rollup and BY_NAME[measurement].kind is Kind.GAUGE else "value"
    q = (f"SELECT {quote_measurement(field)} FROM {_source(measurement, rollup)}"  # noqa: S608
         f"{v1_where(sel)} LIMIT 1")
    firsts = [int(s["values"][0][0]) for chunk in v1_chunks(ic, q, chunk=1000,
                                                            verify=tls_for(ic))
              for s in chunk if s.get("values")]
    return min(firsts) if firsts else None


@dataclass(slots=True)
class _Acc:
    tags: dict[str, str]
    total: float
    count: float


def _from_rollup(ic: InfluxConfig, measurement: str, sel: Selection, step: int,
                 tz: tzinfo) -> Iterator[Row]:
    rows = _rollup_rows(ic, measurement, sel)
    if BY_NAME[measurement].kind is not Kind.GAUGE:
        # last of the hours' last readings, sums of period totals: as from raw points
        yield from resample(measurement, ((t, tags, v, lb) for t, tags, v, _, lb in rows),
                            step, tz)
        return
    buckets = Buckets(step, tz)
    current: int | None = None
    acc: dict[str, _Acc] = {}
    for t, tags, total, count, _ in rows:
        start = buckets.start_of(t)
        if start != current:
            if current is not None:
                yield from _flush(current, acc)
            current = start
        key = series_key(tags)
        held = acc.get(key)
        if held is None:
            acc[key] = _Acc(tags, total, count)
        else:
            held.total += total
            held.count += count
    if current is not None:
        yield from _flush(current, acc)


def _flush(start: int, acc: dict[str, _Acc]) -> Iterator[Row]:
    for key in sorted(acc):
        a = acc[key]
        if a.count:
            yield start, a.tags, a.total / a.count, None
    acc.clear()


def _rollup_rows(ic: InfluxConfig, measurement: str, sel: Selection
                 ) -> Iterator[tuple[int, dict[str, str], float, float, str | None]]:
    """(time, tags, sum or value, count, label) of the rollup, in time order."""
    gauge = BY_NAME[measurement].kind is Kind.GAUGE
    q = f"SELECT * FROM {_source(measurement, True)}{v1_where(sel)}"  # noqa: S608
    known: dict[tuple[Any, ...], dict[str, str]] = {}
    a_name, b_name = ("sum", "count") if gauge else ("value", "")
    for chunk in v1_chunks(ic, q, chunk=10_000, verify=tls_for(ic)):
        for series in chunk:
            cols: list[str] = series["columns"]
            a_at = cols.index(a_name) if a_name in cols else -1
            b_at = cols.index(b_name) if b_name in cols else -1
            l_at = cols.index("label") if "label" in cols else -1
            tag_at = [i for i, c in enumerate(cols) if c != "time" and c not in _ROLLUP_FIELDS]
            for values in series["values"]:
                if a_at < 0 or values[a_at] is None:
                    continue
                seen = tuple(values[i] for i in tag_at)
                tags = known.get(seen)
                if tags is None:
                    tags = known[seen] = {cols[i]: str(values[i]) for i in tag_at
                                          if values[i] not in (None, "")}
                yield (int(values[0]), tags, float(values[a_at]),
                       float(values[b_at]) if b_at >= 0 else 1.0,
                       values[l_at] if l_at >= 0 else None)
