"""The numbers behind the demo's summary and ``report.html``, read from the embedded store.

Each function computes what a Grafana panel of ``collector/outputs/dashboards`` shows, the same way
its InfluxQL does, in plain SQL and Python (no pandas: the daemon's install has none):

- power over time: mean power per device and interval (``mean("value") GROUP BY
  time($__interval)``), FRITZ! groups (``scope = group``) left out;
- energy per day (meter): per device the difference of the last ``energy_wh`` readings of
  consecutive calendar days in the report's zone, negative differences (a meter reset) left
  out (``non_negative_difference(last("value")) GROUP BY time(1d)``); tariff indexes and
  groups left out;
- energy per day (device statistics): ``energy_period_wh`` with ``period = day`` summed per
  calendar day and device;
- temperature and setpoint per room: means per interval of ``temperature_c`` and
  ``setpoint_c`` (``kind = target``) grouped by room, device and source;
- state timelines: every change of ``state`` series (``last("value")`` with
  ``fill(previous)``), as segments.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

#: At most this many intervals per series in a time plot (Grafana's max data points).
MAX_POINTS = 400
_NS = 1_000_000_000
_STEPS_S = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a plot: a name, its times (UTC) and values."""

    name: str
    times: tuple[datetime, ...]
    values: tuple[float, ...]
    group: str = ""  # e.g. the room a temperature line belongs to


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of a state timeline: ``label`` from ``start`` until ``end``."""

    series: str
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SourceCount:
    source: str
    measurement: str
    points: int
    devices: int


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """The store, read-only."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        yield db


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / _NS, UTC)


def interval_s(first_ns: int, last_ns: int) -> int:
    """The interval of a time plot: the smallest step giving at most MAX_POINTS points."""
    span = max(1, (last_ns - first_ns) // _NS)
    return next((s for s in _STEPS_S if span / s <= MAX_POINTS), _STEPS_S[-1])


def counts(db: sqlite3.Connection) -> list[SourceCount]:
    """Points and devices per source and measurement."""
    rows = db.execute(
        "SELECT json_extract(tags, '$.source') AS src, measurement, COUNT(*), "
        "COUNT(DISTINCT json_extract(tags, '$.device_id')) FROM points "
        "GROUP BY src, measurement ORDER BY src, measurement")
    return [SourceCount(str(s), str(m), int(n), int(d)) for s, m, n, d in rows]


def devices(db: sqlite3.Connection) -> dict[str, int]:
    """Devices per source (the collector's own series left out)."""
    rows = db.execute(
        "SELECT json_extract(tags, '$.source') AS src, "
        "COUNT(DISTINCT json_extract(tags, '$.device_id')) FROM points "
        "WHERE measurement != 'collector' GROUP BY src ORDER BY src")
    return {str(s): int(n) for s, n in rows}


def _rows(db: sqlite3.Connection, measurement: str
          ) -> Iterator[tuple[int, dict[str, str], float, str | None]]:
    for t, tags, value, label in db.execute(
            "SELECT time_ns, tags, value, label FROM points WHERE measurement = ? "
            "ORDER BY time_ns", (measurement,)):
        yield int(t), json.loads(tags), float(value), label


def _means(points: dict[str, list[tuple[int, float]]], step_s: int,
           groups: dict[str, str] | None = None) -> list[Series]:
    """Mean per ``step_s`` interval of each named series (empty intervals left out)."""
    out = []
    for name in sorted(points):
        buckets: dict[int, list[float]] = defaultdict(list)
        for t, v in points[name]:
            buckets[t // (step_s * _NS) * step_s * _NS].append(v)
        keys = sorted(buckets)
        out.append(Series(name, tuple(_dt(k) for k in keys),
                          tuple(sum(buckets[k]) / len(buckets[k]) for k in keys),
                          (groups or {}).get(name, "")))
    return out


def _span(db: sqlite3.Connection, *measurements: str) -> tuple[int, int] | None:
    marks = ",".join("?" * len(measurements))
    first, last = db.execute(
        f"SELECT MIN(time_ns), MAX(time_ns) FROM points WHERE measurement IN ({marks})",  # noqa: S608
        measurements).fetchone()
    return None if first is None else (int(first), int(last))


def power(db: sqlite3.Connection) -> list[Series]:
    """Mean power per device and interval, groups left out ("Power over time")."""
    span = _span(db, "power_w")
    if span is None:
        return []
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for t, tags, value, _ in _rows(db, "power_w"):
        if "scope" not in tags:
            points[f"{tags.get('device', '?')} ({tags.get('source', '?')})"].append((t, value))
    return _means(points, interval_s(*span))


def _local_day(ns: int, tz: tzinfo) -> datetime:
    local = datetime.fromtimestamp(ns // _NS, tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)


def energy_meter_per_day(db: sqlite3.Connection, tz: tzinfo) -> list[Series]:
    """Wh per local day and device from the cumulative meters ("Energy per day (meter)")."""
    last: dict[str, dict[datetime, float]] = defaultdict(dict)
    for t, tags, value, _ in _rows(db, "energy_wh"):
        if "scope" in tags or "tariff" in tags:
            continue
        last[f"{tags.get('device', '?')} ({tags.get('source', '?')})"][_local_day(t, tz)] = value
    out = []
    for name in sorted(last):
        days = sorted(last[name])
        pairs = [(b, last[name][b] - last[name][a]) for a, b in itertools.pairwise(days)]
        kept = [(d, wh) for d, wh in pairs if wh >= 0]
        if kept:
            out.append(Series(name, tuple(d for d, _ in kept), tuple(wh for _, wh in kept)))
    return out


def energy_stats_per_day(db: sqlite3.Connection, tz: tzinfo) -> list[Series]:
    """Wh per local day and device from the devices' own daily totals
    ("Energy per day (device statistics)")."""
    sums: dict[str, dict[datetime, float]] = defaultdict(lambda: defaultdict(float))
    for t, tags, value, _ in _rows(db, "energy_period_wh"):
        if tags.get("period") != "day" or "scope" in tags:
            continue
        sums[f"{tags.get('device', '?')} ({tags.get('source', '?')})"][_local_day(t, tz)] += value
    return [Series(name, tuple(sorted(sums[name])),
                   tuple(sums[name][d] for d in sorted(sums[name])))
            for name in sorted(sums)]


def climate(db: sqlite3.Connection) -> list[Series]:
    """Temperature and target setpoint per room, device and source; ``group`` is the room.

    Readings without a room cannot be placed in a room and are left out. The plot spans the
    measured temperatures; a setpoint set before they begin (a thermostat written only when
    its setpoint changes, stamped with the time of that change) holds until it changes and is
    drawn from the start of the plot."""
    span = _span(db, "temperature_c") or _span(db, "setpoint_c")
    if span is None:
        return []
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    groups: dict[str, str] = {}
    for measurement in ("temperature_c", "setpoint_c"):
        for t, tags, value, _ in _rows(db, measurement):
            room = tags.get("room")
            if room is None or (measurement == "setpoint_c" and tags.get("kind") != "target"):
                continue
            what = "temperature" if measurement == "temperature_c" else "setpoint"
            name = f"{room} · {what} · {tags.get('device', '?')} ({tags.get('source', '?')})"
            if t < span[0]:  # rows come by time: the last one before the plot is kept
                points[name] = [(span[0], value)]
            else:
                points[name].append((t, value))
            groups[name] = room
    return _means(points, interval_s(span[0], max(span[1], *(
        t for series in points.values() for t, _ in series[-1:]))), groups)


#: The states a timeline shows, as on the Climate and Devices dashboards.
TIMELINE_STATES = ("thermostat_mode", "temp_mode", "heating_level", "hvac_mode", "on_off",
                   "window_open", "boost", "present", "voip_status", "open_closed")


def timelines(db: sqlite3.Connection, names: tuple[str, ...] = TIMELINE_STATES,
              limit: int = 40) -> list[Segment]:
    """Each change of the chosen states as a segment until the next change (or the last
    reading of the series): a state timeline."""
    changes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    last_seen: dict[str, int] = {}
    for t, tags, value, label in _rows(db, "state"):
        if tags.get("name") not in names:
            continue
        series = f"{tags.get('device', '?')} · {tags['name']} ({tags.get('source', '?')})"
        if series not in changes and len(changes) >= limit:
            continue
        text = label if label else f"{value:g}"
        if not changes[series] or changes[series][-1][1] != text:
            changes[series].append((t, text))
        last_seen[series] = t
    out = []
    for series in sorted(changes):
        marks = changes[series]
        ends = [t for t, _ in marks[1:]] + [last_seen[series]]
        for (start, text), end in zip(marks, ends, strict=True):
            out.append(Segment(series, text, _dt(start), _dt(max(end, start + _NS))))
    return out
