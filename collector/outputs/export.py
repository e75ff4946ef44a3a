"""``collector export``: measurements from the configured store to CSV or Parquet, streamed.

Long form (the default): one row per point with its time, measurement, every tag of the
schema (``room`` among them), the value and its unit. Wide form (``--wide``): one row per
instant and one column per series, named by device, room and measurement (which names the
unit: ``Plug 1 (Kitchen) power_w``). ``--resample`` aggregates per the measurement's kind
(collector/outputs/export_shape.py). Timestamps are ISO 8601: UTC with ``Z``, or ``--tz`` with the
offset.

Rows are read, shaped and written chunk by chunk (collector/stores/read.py): memory does not
grow with the number of rows. A file is written under a temporary name beside ``--out`` and
renamed when complete, so a failed export leaves nothing half-written. pandas is imported
only by ``to_dataframe`` and collector.outputs.analysis, never by the daemon; Parquet is written
with pyarrow in row groups.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any

from collector.config import Config
from collector.errors import ConfigError
from collector.outputs.export_shape import (
    formatter,
    step_seconds,
    wide_columns,
    wide_rows,
    zone,
)
from collector.schema import BASE_TAGS, BY_NAME, OPTIONAL_TAGS, TABLE
from collector.stores.read import CHUNK, Row, Selection, read

__all__ = ["ExportRequest", "Row", "Selection", "export", "parse_time", "rows", "write_csv",
           "zone"]

_REL_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
Progress = Callable[[int], None]


def parse_time(text: str | datetime | None, *, now: datetime | None = None) -> int | None:
    """'2026-11-01', '2026-11-01T12:00:00+01:00', a datetime, or '7d' (ago) -> epoch ns.

    A time without a zone is UTC.
    """
    if text is None:
        return None
    if isinstance(text, datetime):
        ts = text
    else:
        t = text.strip()
        if t[:-1].isdigit() and t[-1:] in _REL_S:
            ts = (now or datetime.now(UTC)) - timedelta(seconds=int(t[:-1]) * _REL_S[t[-1]])
        else:
            try:
                ts = datetime.fromisoformat(t)
            except ValueError as err:
                raise ConfigError(
                    f"--from/--to: {text!r} is not an ISO date/time or e.g. 7d") from err
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000


def measurement_names(names: Iterable[str], every: bool = False) -> tuple[str, ...]:
    """The measurements asked for, checked against the schema table."""
    if every:
        return tuple(m.name for m in TABLE)
    chosen = tuple(dict.fromkeys(names))
    if not chosen:
        raise ConfigError("--measurement: name one (repeatable) or give --all; known: "
                          + ", ".join(BY_NAME))
    for name in chosen:
        if name not in BY_NAME:
            raise ConfigError(f"--measurement: unknown measurement {name!r}; "
                              f"known: {', '.join(BY_NAME)}")
    return chosen


@dataclass(frozen=True, slots=True)
class ExportRequest:
    measurements: tuple[str, ...]
    selection: Selection = Selection()  # noqa: RUF009 (frozen: shared safely)
    fmt: str = "csv"
    wide: bool = False
    resample: str | None = None
    tz: tzinfo = UTC


def rows(config: Config, measurement: str, *, start: int | None = None, end: int | None = None,
         device: str | None = None, site: str | None = None,
         room: str | None = None) -> Iterator[Row]:
    """Points of one measurement, oldest first (see collector.stores.read)."""
    measurement_names([measurement])
    return read(config, measurement, Selection(start, end, device, site, room))


def _shaped(config: Config, req: ExportRequest, measurement: str) -> Iterator[Row]:
    if req.resample is not None:
        # from the hourly rollups where they give the same numbers
        # (collector/outputs/export_rollup.py)
        from collector.outputs.export_rollup import resampled

        return resampled(config, measurement, req.selection, step_seconds(req.resample),
                         req.tz)
    return read(config, measurement, req.selection)


def long_header(measurements: Iterable[str]) -> tuple[list[str], list[str]]:
    """(header, tag columns): time, measurement, the schema's tags, other_tags, value, unit,
    label."""
    extra = sorted({k for name in measurements for k, _ in BY_NAME[name].tags}
                   - set(BASE_TAGS) - set(OPTIONAL_TAGS))
    tags = [*BASE_TAGS, *OPTIONAL_TAGS, *extra]
    return ["time", "measurement", *tags, "other_tags", "value", "unit", "label"], tags


def _long_records(config: Config, req: ExportRequest, tag_cols: list[str]
                  ) -> Iterator[list[Any]]:
    known = set(tag_cols)
    for measurement in req.measurements:
        unit = BY_NAME[measurement].unit
        # the tag cells of a series, by its (shared) tags dict, which the entry keeps alive
        cells: dict[int, tuple[dict[str, str], list[str]]] = {}
        for t, tags, value, label in _shaped(config, req, measurement):
            held = cells.get(id(tags))
            if held is None or held[0] is not tags:
                other = ";".join(f"{k}={v}" for k, v in sorted(tags.items()) if k not in known)
                held = cells[id(tags)] = (tags, [*(tags.get(k, "") for k in tag_cols), other])
                if len(cells) > 100_000:
                    cells.clear()
            yield [t, measurement, *held[1], value, unit, label or ""]


def _merged(config: Config, req: ExportRequest) -> Iterator[tuple[str, Row]]:
    """Every measurement's rows in one time order (for the wide form)."""
    def tagged(name: str) -> Iterator[tuple[str, Row]]:
        return ((name, row) for row in _shaped(config, req, name))

    return heapq.merge(*(tagged(m) for m in req.measurements), key=lambda mr: mr[1][0])


def _wide(config: Config, req: ExportRequest) -> tuple[list[str], Iterator[list[Any]]]:
    # a first pass finds the columns: a series' name is only known once it was read
    series = ((m, tags) for m in req.measurements
              for _, tags, _, _ in read(config, m, req.selection))
    columns = wide_columns(series)
    header = ["time", *(name for _, name in columns)]
    return header, ([t, *line] for t, line in wide_rows(_merged(config, req), columns))


def _write_csv(header: list[str], records: Iterable[list[Any]], out: IO[str], tz: tzinfo,
               progress: Progress | None, time_at: int = 0, value_at: Iterable[int] = ()
               ) -> int:
    fmt = formatter(tz)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    floats = tuple(value_at)
    n = 0
    for rec in records:
        rec[time_at] = fmt(rec[time_at])
        for i in floats:
            if rec[i] is not None:
                rec[i] = repr(rec[i])
        writer.writerow(rec)
        n += 1
        if progress is not None and n % CHUNK == 0:
            progress(n)
    return n


def _write_parquet(header: list[str], records: Iterable[list[Any]], path: Path, tz: tzinfo,
                   wide: bool, progress: Progress | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tz_name = "UTC" if tz is UTC else str(tz)
    fields = []
    for i, name in enumerate(header):
        if i == 0:
            fields.append(pa.field(name, pa.timestamp("ns", tz=tz_name)))
        elif wide or name == "value":
            fields.append(pa.field(name, pa.float64()))
        else:
            fields.append(pa.field(name, pa.string()))
    schema = pa.schema(fields)
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[list[Any]] = []
        for rec in records:
            batch.append(rec)
            if len(batch) == CHUNK * 5:
                writer.write_batch(pa.RecordBatch.from_arrays(
                    [pa.array(col, type=f.type) for col, f in zip(zip(*batch, strict=True),
                                                                  fields, strict=True)],
                    schema=schema))
                n += len(batch)
                batch = []
                if progress is not None:
                    progress(n)
        if batch or n == 0:
            cols: list[Any] = list(zip(*batch, strict=True)) if batch else [[] for _ in fields]
            writer.write_batch(pa.RecordBatch.from_arrays(
                [pa.array(col, type=f.type) for col, f in zip(cols, fields, strict=True)],
                schema=schema))
            n += len(batch)
    return n


@contextlib.contextmanager
def _atomic(out: Path) -> Iterator[Path]:
    """A temporary file beside ``out``, renamed to it when the block succeeds (private: 0600)."""
    parent = out.parent
    if not parent.is_dir():
        raise ConfigError(f"--out: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def export(config: Config, req: ExportRequest, out: Path | None = None, *,
           stdout: IO[str] | None = None, progress: Progress | None = None) -> int:
    """Write the export to ``out`` (atomically) or ``stdout``; return the number of rows."""
    if req.resample is not None:
        step_seconds(req.resample)  # a bad interval is said before anything is read
    if req.wide:
        header, records = _wide(config, req)
        floats: list[int] = list(range(1, len(header)))
    else:
        header, tag_cols = long_header(req.measurements)
        records = _long_records(config, req, tag_cols)
        floats = [header.index("value")]
    if req.fmt == "parquet":
        if out is None:
            raise ConfigError("--format parquet needs --out FILE")
        with _atomic(out) as tmp:
            return _write_parquet(header, records, tmp, req.tz, req.wide, progress)
    if out is None:
        return _write_csv(header, records, stdout or sys.stdout, req.tz, progress,
                          value_at=floats)
    with _atomic(out) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        return _write_csv(header, records, fh, req.tz, progress, value_at=floats)


def write_csv(measurement: str, data: Iterable[Row], out: IO[str]) -> int:
    """Rows of one measurement as long-form CSV (UTC), streamed."""
    header, tag_cols = long_header([measurement])
    known, unit = set(tag_cols), BY_NAME[measurement].unit
    records = ([t, measurement, *(tags.get(k, "") for k in tag_cols),
                ";".join(f"{k}={v}" for k, v in sorted(tags.items()) if k not in known),
                value, unit, label or ""] for t, tags, value, label in data)
    return _write_csv(header, records, out, UTC, None, value_at=[header.index("value")])


def to_dataframe(measurement: str, data: Iterable[Row]) -> Any:
    """Rows of one measurement as a tidy DataFrame (time index in UTC)."""
    from collector.outputs.frames import frame

    return frame(measurement, data)


def export_measurement(config: Config, measurement: str, *, start: str | None, end: str | None,
                       device: str | None, fmt: str = "csv", out: Path | None = None) -> int:
    """One measurement, long form, UTC (the plain ``collector export --measurement M``)."""
    req = ExportRequest(measurement_names([measurement]),
                        Selection(parse_time(start), parse_time(end), device), fmt)
    return export(config, req, out)
