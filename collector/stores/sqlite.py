"""The embedded default store: one SQLite file, one row per point.

``points`` is keyed by (measurement, series, time_ns), where ``series`` is the canonical
tag string (tags sorted by key, escaped as in line protocol), so writing the same line twice
overwrites the row, exactly as InfluxDB does. ``tags`` holds all tags as a JSON object for
queries and export. Only the schema's fields exist: a numeric ``value`` (stored as a float)
and an optional string ``label``.

A batch is all or nothing: every line is parsed before the single transaction starts, and a
bad line rejects the batch (HTTP-like status 400) naming its 1-based line number.
The database runs in WAL mode with ``synchronous=FULL``; the file is created private (0600).

A write that fails (a full disk, a file at its size cap, any other write error) leaves no
transaction open, raises ``StoreUnavailable`` (delivery keeps the lines in the spool and
tries again later) and is an error in the log naming the file and the space left, once
until a write goes through again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from collector.disk import describe, free_text
from collector.errors import ParseError, StoreRejected, StoreUnavailable
from collector.lineprotocol import escape_key, parse_line

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    series TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    value REAL NOT NULL,
    label TEXT,
    tags TEXT NOT NULL,
    PRIMARY KEY (measurement, series, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (measurement, time_ns);
"""
_INSERT = (
    "INSERT OR REPLACE INTO points (measurement, series, time_ns, value, label, tags) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_BUSY_TIMEOUT_S = 30.0
#: Page cache per connection in KiB (SQLite's default: 2,000 KiB). Writes touch a few pages
#: per series and pages come back from the OS cache in microseconds: measured on a 1.5 GB
#: store, 512 KiB writes as fast as the default while keeping the daemon's memory low.
_CACHE_KIB = 512

# measurement and tags: up to the first space that is not escaped (as parse_line scans them)
_PREFIX = re.compile(r"(?:\\[,= ]|[^ ])+")
_PREFIX_CACHE_MAX = 50_000

Row = tuple[str, str, int, float, str | None, str]
# (measurement, series, tags as JSON)
_Series = tuple[str, str, str]


class LatestValue(NamedTuple):
    """The newest point of one series."""

    measurement: str
    time_ns: int
    tags: dict[str, str]
    value: float
    label: str | None


class _BadLineError(Exception):
    pass


class SqliteStore:
    """Line protocol into a local SQLite file (the default store; ``collector export`` reads it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"sqlite:{self.path}"
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        #: the text of the failure writes end with now (None while they go through)
        self._failing: str | None = None
        _create_private(self.path)
        self._db = self._connect()
        with self._db:
            self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: journal_mode is %s, not wal", self.path, mode)
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        return db

    # --- writing --------------------------------------------------------------------------

    def _rows(self, lines: Sequence[str]) -> list[Row]:
        rows: list[Row] = []
        append = rows.append
        series_cache = self._series
        for number, line in enumerate(lines, 1):
            try:
                match = _PREFIX.match(line)
                if match is None:
                    raise _BadLineError("no measurement")
                prefix = match.group()
                series = series_cache.get(prefix)
                fast = _fast_fields(line, match.end()) if series is not None else None
                if series is None or fast is None:
                    row = self._slow_row(line)
                    if series is None:
                        self._remember(prefix, row)
                    append(row)
                else:
                    append((series[0], series[1], fast[1], fast[0], None, series[2]))
            except (_BadLineError, ParseError) as err:
                raise StoreRejected(f"line {number}: {err}: {line[:200]!r}", status=400) from err
        return rows

    def _remember(self, prefix: str, row: Row) -> None:
        """Cache the series of ``prefix`` if the prefix alone parses to the same series.

        That holds for every well-formed line; it keeps a malformed line (say, an unescaped
        space in a tag key) from lending its series to later lines.
        """
        try:
            alone = self._slow_row(prefix + " value=0 0")
        except (_BadLineError, ParseError):
            return
        if alone[0] != row[0] or alone[1] != row[1]:
            return
        if len(self._series) >= _PREFIX_CACHE_MAX:
            self._series.clear()
        self._series[prefix] = (row[0], row[1], row[5])

    @staticmethod
    def _slow_row(line: str) -> Row:
        parsed = parse_line(line)
        if not parsed.measurement:
            raise _BadLineError("empty measurement")
        value: float | None = None
        label: str | None = None
        for key, field in parsed.fields:
            if key == "value" and isinstance(field, int | float) and not isinstance(field, bool):
                value = float(field)
            elif key == "label" and isinstance(field, str):
                label = field
            else:
                raise _BadLineError(f"unsupported field {key}={field!r} (only value and label)")
        if value is None:
            raise _BadLineError("no numeric value field")
        if not math.isfinite(value):
            raise _BadLineError(f"value {value!r} is not finite")
        if parsed.time_ns == 0 and not line.rstrip().endswith(" 0"):
            raise _BadLineError("no timestamp")
        tags = sorted(parsed.tags)
        series = ",".join(f"{escape_key(k)}={escape_key(v)}" for k, v in tags)
        tags_json = json.dumps(dict(tags), ensure_ascii=False, separators=(",", ":"))
        return (parsed.measurement, series, parsed.time_ns, value, label, tags_json)

    def _write_rows(self, rows: list[Row]) -> None:
        with self._lock:
            try:
                if self._db.in_transaction:  # left open by a fault: a new one could not begin
                    self._rollback()
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(_INSERT, rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    # also after a failed COMMIT (a full disk), which may leave it open
                    self._rollback()
                    raise
            except sqlite3.Error as err:
                raise self._failed(err) from err
            self._wrote()

    def _rollback(self) -> None:
        """End the open transaction unless SQLite ended it itself (it may on SQLITE_FULL)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _failed(self, err: sqlite3.Error) -> StoreUnavailable:
        """A failed write as an outage of the store, logged when it is news."""
        text = describe(err)
        if text != self._failing:
            self._failing = text
            log.error("store %s cannot be written: %s; %s. The lines stay in the spool until "
                      "it can", self.path, text, free_text(self.path))
        return StoreUnavailable(f"{self.name}: write failed: {text}")

    def _wrote(self) -> None:
        if self._failing is not None:
            self._failing = None
            log.warning("store %s can be written again", self.path)

    def write_sync(self, lines: Sequence[str]) -> None:
        """Parse and store a batch in one transaction (blocking)."""
        if lines:
            self._write_rows(self._rows(lines))

    async def write(self, lines: Sequence[str]) -> None:
        if lines:
            # parsing 5,000 lines takes milliseconds: off the event loop, like the fsync
            await asyncio.to_thread(self.write_sync, lines)

    async def check(self) -> str:
        def probe() -> None:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")  # takes the write lock: proves writable
                self._db.execute("ROLLBACK")

        try:
            await asyncio.to_thread(probe)
        except sqlite3.Error as err:
            raise StoreUnavailable(f"{self.name}: not writable: {err}") from err
        return f"SQLite {sqlite3.sqlite_version} at {self.path}: writable"

    # --- reading (export, summaries) ------------------------------------------------------

    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = self._connect()
        return self._reader

    def query(
        self,
        measurement: str,
        start_ns: int | None,
        end_ns: int | None,
        device: str | None,
    ) -> Iterator[tuple[int, dict[str, str], float, str | None]]:
        """Points of ``measurement`` with ``start_ns <= time < end_ns``, oldest first.

        ``device`` matches the ``device`` tag (display name) or the ``device_id`` tag.
        """
        sql = "SELECT time_ns, tags, value, label FROM points WHERE measurement = ?"
        args: list[object] = [measurement]
        if start_ns is not None:
            sql += " AND time_ns >= ?"
            args.append(start_ns)
        if end_ns is not None:
            sql += " AND time_ns < ?"
            args.append(end_ns)
        if device is not None:
            sql += (
                " AND (json_extract(tags, '$.device') = ? OR json_extract(tags, '$.device_id') = ?)"
            )
            args.extend((device, device))
        sql += " ORDER BY time_ns, series"
        with self._read_lock:
            cursor = self._read().execute(sql, args)
        while True:
            with self._read_lock:
                chunk = cursor.fetchmany(2000)
            if not chunk:
                return
            for time_ns, tags, value, label in chunk:
                yield int(time_ns), _tags(tags), float(value), label

    def measurements(self) -> list[tuple[str, int]]:
        """Every measurement with its number of points, by name."""
        with self._read_lock:
            rows = self._read().execute(
                "SELECT measurement, COUNT(*) FROM points GROUP BY measurement ORDER BY measurement"
            )
            return [(str(name), int(count)) for name, count in rows]

    def latest(self) -> list[LatestValue]:
        """The newest point of every series, by measurement and series."""
        # SQLite takes the bare columns of an aggregate query from the row holding the MAX
        sql = (
            "SELECT measurement, MAX(time_ns), tags, value, label FROM points "
            "GROUP BY measurement, series ORDER BY measurement, series"
        )
        with self._read_lock:
            rows = self._read().execute(sql).fetchall()
        return [
            LatestValue(str(m), int(t), _tags(tags), float(v), label)
            for m, t, tags, v, label in rows
        ]

    # --- closing --------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _fast_fields(line: str, end: int) -> tuple[float, int] | None:
    """``value=<float> <time>`` as our encoder writes it; None for anything else."""
    if not line.startswith(" value=", end):
        return None
    fields, sep, ts = line[end + 7 :].partition(" ")
    if (
        not sep
        or not (ts.isascii() and ts.isdigit())
        or not fields
        or "," in fields
        or "_" in fields
    ):
        return None
    try:
        value = float(fields)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return value, int(ts)


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = json.loads(text)
    return tags


def _create_private(path: Path) -> None:
    """Create the file (and missing parents) readable by its owner only."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # an existing file (and its write-ahead log) is made private too, like the spool
        for existing in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            if existing.exists():
                os.chmod(existing, 0o600)
        return
    os.close(fd)
    os.chmod(path, 0o600)  # whatever the umask
