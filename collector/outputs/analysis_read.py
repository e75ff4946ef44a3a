"""Columns for ``collector.outputs.analysis.load``: a measurement read into arrays, not rows.

A DataFrame is built from whole columns; going through one Python tuple per point (as the
export does, for streaming) costs several times more. So ``load`` reads here:

- the embedded store: one cursor, appending time, value, label and a series number per point;
- InfluxDB 1.x: ``SELECT "value", "label" ... GROUP BY *`` with ``chunked=true``, so the
  server streams the answer in pieces and every series names its tags once; a series' times
  and values become arrays in one step;
- InfluxDB 2.x: the export's reader, row by row.

The result is ordered as the export orders rows: by time, then by series key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector.config import Config, InfluxConfig
from collector.stores.read import (
    CHUNK,
    Row,
    Selection,
    quote_measurement,
    read,
    series_key,
    sqlite_rows,
    tls_for,
    v1_chunks,
    v1_where,
)


@dataclass(frozen=True, slots=True)
class Columns:
    times: Any  # int64 epoch ns
    values: Any  # float64
    labels: list[str | None] | None  # None where the measurement has no labels
    codes: Any  # int64: the index into ``series`` of each point
    series: list[dict[str, str]]


def read_columns(config: Config, measurement: str, sel: Selection) -> Columns:
    if config.store.kind == "sqlite" or config.influxdb is None:
        return _sqlite_columns(Path(config.store.path), measurement, sel)
    if config.influxdb.api == "v1":
        return _ordered(*_v1_columns(config.influxdb, measurement, sel))
    return _from_rows(config, measurement, sel)


def _from_rows(config: Config, measurement: str, sel: Selection) -> Columns:
    return columns_from_rows(read(config, measurement, sel))


def columns_from_rows(rows: Iterable[Row]) -> Columns:
    """Columns of rows in the export's form (any store, any order kept)."""
    times: list[int] = []
    values: list[float] = []
    labels: list[str | None] = []
    codes: list[int] = []
    number: dict[str, int] = {}
    series: list[dict[str, str]] = []
    for t, tags, value, label in rows:
        key = series_key(tags)
        code = number.get(key)
        if code is None:
            code = number[key] = len(series)
            series.append(tags)
        times.append(t)
        values.append(value)
        labels.append(label)
        codes.append(code)
    return Columns(np.array(times, dtype=np.int64), np.array(values, dtype=np.float64),
                   labels if any(lb is not None for lb in labels) else None,
                   np.array(codes, dtype=np.int64), series)


def _sqlite_columns(path: Path, measurement: str, sel: Selection) -> Columns:
    # the export's reader gives the query, the checks and the errors; the rows come as
    # (time, tags, value, label), tags shared per series
    times: list[int] = []
    values: list[float] = []
    labels: list[str | None] = []
    codes: list[int] = []
    number: dict[int, int] = {}
    series: list[dict[str, str]] = []
    t_add, v_add, l_add, c_add = times.append, values.append, labels.append, codes.append
    for t, tags, value, label in sqlite_rows(path, measurement, sel, CHUNK):
        code = number.get(id(tags))
        if code is None:
            code = number[id(tags)] = len(series)
            series.append(tags)  # keeps the dict (and so its id) alive
        t_add(t)
        v_add(value)
        l_add(label)
        c_add(code)
    return Columns(np.array(times, dtype=np.int64), np.array(values, dtype=np.float64),
                   labels if any(lb is not None for lb in labels) else None,
                   np.array(codes, dtype=np.int64), series)


def _v1_columns(ic: InfluxConfig, measurement: str, sel: Selection
                ) -> tuple[list[Any], list[Any], list[list[Any]] | None, list[Any],
                           list[dict[str, str]]]:
    assert ic.database
    q = (f'SELECT "value", "label" FROM {quote_measurement(measurement)}'  # noqa: S608
         + v1_where(sel) + " GROUP BY *")
    number: dict[tuple[tuple[str, str], ...], int] = {}
    series: list[dict[str, str]] = []
    times: list[Any] = []
    values: list[Any] = []
    labels: list[list[Any]] = []
    codes: list[Any] = []
    with_labels = False
    for chunk in v1_chunks(ic, q, chunk=CHUNK, verify=tls_for(ic)):
        for s in chunk:
            tags = {k: v for k, v in (s.get("tags") or {}).items() if v}
            key = tuple(sorted(tags.items()))
            code = number.get(key)
            if code is None:
                code = number[key] = len(series)
                series.append(tags)
            cols = s["columns"]
            v_at = cols.index("value") if "value" in cols else None
            l_at = cols.index("label") if "label" in cols else None
            rows = [r for r in s["values"] if v_at is not None and r[v_at] is not None]
            if not rows or v_at is None:
                continue
            t, v, lb = zip(*((r[0], r[v_at], None if l_at is None else r[l_at])
                             for r in rows), strict=True)
            times.append(np.array(t, dtype=np.int64))
            values.append(np.array(v, dtype=np.float64))
            labels.append(list(lb))
            with_labels = with_labels or any(x is not None for x in lb)
            codes.append(np.full(len(t), code, dtype=np.int64))
    return times, values, labels if with_labels else None, codes, series


def _ordered(times: list[Any], values: list[Any], labels: list[list[Any]] | None,
             codes: list[Any], series: list[dict[str, str]]) -> Columns:
    if not times:
        return Columns(np.array([], dtype=np.int64), np.array([], dtype=np.float64), None,
                       np.array([], dtype=np.int64), series)
    t, v, c = np.concatenate(times), np.concatenate(values), np.concatenate(codes)
    rank = np.empty(len(series), dtype=np.int64)
    rank[np.argsort(np.array([series_key(s) for s in series], dtype=object))] = np.arange(
        len(series))
    order = np.lexsort((rank[c], t))
    flat = None
    if labels is not None:
        every = [x for part in labels for x in part]
        flat = [every[i] for i in order]
    return Columns(t[order], v[order], flat, c[order], series)
