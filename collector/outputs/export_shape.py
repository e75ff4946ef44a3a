"""Shaping exported rows: timestamps in a time zone, resampling, and the wide form.

All of it streams: rows come in time order and go out in time order, holding only the
current interval (resampling) or the current instant (wide form) per series.

Resampling takes the aggregate that fits the measurement's kind in the schema table: the mean
of a gauge, the last reading of a counter or a state, the sum of period totals. Intervals are
aligned to the wall clock of the export's time zone: ``1d`` is a calendar day there (23 or
25 hours on a daylight-saving change), ``15m`` and ``1h`` start on the zone's quarter or full
hour. A row's timestamp is the start of its interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import ConfigError
from collector.schema import BY_NAME, Kind
from collector.stores.read import Row, series_key

_NS = 1_000_000_000
_STEP = re.compile(r"^(\d+)([mhd])$")
_STEP_S = {"m": 60, "h": 3600, "d": 86400}


def zone(name: str | None) -> tzinfo:
    """The time zone named by ``--tz`` (an IANA name; None or UTC: UTC)."""
    if name is None or name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--tz: unknown time zone {name!r} (an IANA name such as "
                          "Europe/Berlin, or UTC)") from None


def formatter(tz: tzinfo) -> Callable[[int], str]:
    """A function epoch ns -> ISO 8601 text in ``tz``: ``Z`` for UTC, else the offset."""
    last = [-1, ""]  # the instant before: many series share one

    def fmt(ns: int) -> str:
        if ns == last[0]:
            return last[1]  # type: ignore[return-value]
        s, rest = divmod(ns, _NS)
        text = datetime.fromtimestamp(s, tz).replace(microsecond=rest // 1000).isoformat()
        if tz is UTC:
            text = text[:-6] + "Z"
        last[0], last[1] = ns, text
        return text

    return fmt


def step_seconds(text: str) -> int:
    """``15m``, ``1h``, ``1d`` ... -> seconds; whole days or a divisor of a day."""
    m = _STEP.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"--resample: {text!r} is not an interval such as 15m, 1h or 1d")
    seconds = int(m.group(1)) * _STEP_S[m.group(2)]
    if seconds != 86400 and 86400 % seconds:
        raise ConfigError(f"--resample: {text!r} does not divide a day (15m, 1h or 1d)")
    return seconds


@dataclass(slots=True)
class _Interval:
    start_ns: int
    end_ns: int


class Buckets:
    """The interval of ``step`` seconds, aligned to the wall clock of ``tz``, holding a time."""

    def __init__(self, step: int, tz: tzinfo) -> None:
        self.step, self.tz = step, tz
        self._cur = _Interval(0, 0)

    def start_of(self, ns: int) -> int:
        cur = self._cur
        if cur.start_ns <= ns < cur.end_ns:
            return cur.start_ns
        local = datetime.fromtimestamp(ns // _NS, self.tz)
        if self.step == 86400:
            first = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
            after = (first + timedelta(days=1, hours=3)).replace(hour=0)
            start, end = first.timestamp(), after.timestamp()
        else:
            secs = local.hour * 3600 + local.minute * 60 + local.second
            floor = secs - secs % self.step
            first = local.replace(hour=floor // 3600, minute=floor % 3600 // 60, second=0,
                                  microsecond=0)
            start = first.timestamp()
            end = start + self.step
        self._cur = _Interval(int(start) * _NS, int(end) * _NS)
        return self._cur.start_ns

    def end_of(self, ns: int) -> int:
        """The end of the interval holding ``ns`` (the start of the next)."""
        self.start_of(ns)
        return self._cur.end_ns


@dataclass(slots=True)
class _Acc:
    tags: dict[str, str]
    total: float  # the sum (gauge, period) or the last value (counter, state)
    count: int
    label: str | None


def resample(measurement: str, rows: Iterable[Row], step: int, tz: tzinfo) -> Iterator[Row]:
    """One row per series and interval, with the aggregate of the measurement's kind."""
    kind = BY_NAME[measurement].kind
    adds = kind in (Kind.GAUGE, Kind.PERIOD)
    buckets = Buckets(step, tz)
    current: int | None = None
    acc: dict[str, _Acc] = {}

    def flush(start: int) -> Iterator[Row]:
        for key in sorted(acc):
            a = acc[key]
            yield start, a.tags, a.total / a.count if kind is Kind.GAUGE else a.total, a.label
        acc.clear()

    for t, tags, value, label in rows:
        start = buckets.start_of(t)
        if start != current:
            if current is not None:
                yield from flush(current)
            current = start
        key = series_key(tags)
        held = acc.get(key)
        if held is None:
            acc[key] = _Acc(tags, value, 1, label)
        elif adds:
            held.total += value
            held.count += 1
        else:  # counter and state: the last reading
            held.total, held.label = value, label
    if current is not None:
        yield from flush(current)


# --- wide form ------------------------------------------------------------------------------

#: tags that never tell two series of one device apart
_NOT_IN_NAME = ("source", "site", "device_id", "device", "room", "model")


def column_name(measurement: str, tags: dict[str, str]) -> str:
    """``Plug 1 (Kitchen) power_w``; other tags in brackets: ``setpoint_c[kind=target]``."""
    room = f" ({tags['room']})" if tags.get("room") else ""
    extra = ",".join(f"{k}={v}" for k, v in sorted(tags.items()) if k not in _NOT_IN_NAME)
    return f"{tags.get('device', tags.get('device_id', '?'))}{room} {measurement}" + (
        f"[{extra}]" if extra else "")


def wide_columns(series: Iterable[tuple[str, dict[str, str]]]) -> list[tuple[str, str]]:
    """(column key, header) per (measurement, tags), sorted by header; headers made unique
    with the device_id (and site) where two series would share one."""
    seen: dict[str, tuple[str, dict[str, str]]] = {}
    for measurement, tags in series:
        seen.setdefault(f"{measurement} {series_key(tags)}", (measurement, tags))
    names: dict[str, list[str]] = {}
    for key, (measurement, tags) in seen.items():
        names.setdefault(column_name(measurement, tags), []).append(key)
    out = []
    for name, keys in names.items():
        for key in keys:
            measurement, tags = seen[key]
            unique = name if len(keys) == 1 else (
                f"{name} #{tags.get('site', '')}/{tags.get('device_id', '')}")
            out.append((key, unique))
    return sorted(out, key=lambda kv: kv[1])


def wide_rows(rows: Iterable[tuple[str, Row]], columns: list[tuple[str, str]]
              ) -> Iterator[tuple[int, list[float | None]]]:
    """One row per instant: the value of each column at it, None where it has none."""
    at = {key: i for i, (key, _) in enumerate(columns)}
    current: int | None = None
    line: list[float | None] = [None] * len(columns)
    for measurement, (t, tags, value, _label) in rows:
        if t != current:
            if current is not None:
                yield current, line
                line = [None] * len(columns)
            current = t
        line[at[f"{measurement} {series_key(tags)}"]] = value
    if current is not None:
        yield current, line
