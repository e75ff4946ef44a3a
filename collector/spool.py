"""The durable spool between collection and the store.

A reading counts as collected once its line is committed here (SQLite, WAL,
``synchronous=FULL``). Delivery takes the oldest lines in batches and removes them only
after the store accepted them, so a store outage or a kill -9 loses nothing; a line the
store rejects (HTTP 400/422) is moved to the ``dead_letter`` table with the server's
message. Re-delivering a line after a crash is harmless: the same series and timestamp
overwrite in InfluxDB and in the embedded store.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    queued_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    status INTEGER NOT NULL,
    error TEXT NOT NULL,
    failed_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    pending: int
    dead_letters: int
    dropped_total: int
    delivered_total: int
    oldest_queued_ns: int | None
    path: Path


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    line: str
    status: int
    error: str
    failed_ns: int


def private_file(path: Path) -> None:
    """Create ``path`` (and its parents) readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    else:
        os.chmod(path, 0o600)


class Spool:
    """The on-disk buffer. Not thread-safe: use it from one thread (the event loop)."""

    def __init__(self, path: Path, *, max_lines: int = 5_000_000) -> None:
        self.path = path
        self.max_lines = max_lines
        private_file(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._pending = self._count("pending")

    def close(self) -> None:
        self._db.close()

    def _count(self, table: str) -> int:
        row = self._db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    @property
    def pending(self) -> int:
        return self._pending

    def append(self, lines: Sequence[str]) -> int:
        """Commit ``lines``; return how many older lines had to be dropped to stay bounded."""
        if not lines:
            return 0
        now = time.time_ns()
        dropped = 0
        with self._tx():
            self._db.executemany(
                "INSERT INTO pending(line, queued_ns) VALUES (?, ?)", [(ln, now) for ln in lines]
            )
            excess = self._pending + len(lines) - self.max_lines
            if excess > 0:
                cur = self._db.execute(
                    "DELETE FROM pending WHERE id IN "
                    "(SELECT id FROM pending ORDER BY id LIMIT ?)",
                    (excess,),
                )
                dropped = cur.rowcount
                self._bump("dropped", dropped)
        self._pending += len(lines) - dropped
        if dropped:
            log.error(
                "spool is full (%d lines, limit spool.max_lines = %d): DROPPED the %d oldest "
                "lines; the store has been unreachable too long or max_lines is too small",
                self._pending, self.max_lines, dropped,
            )
        return dropped

    def peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` pending lines as (id, line)."""
        return [
            (int(i), str(ln))
            for i, ln in self._db.execute(
                "SELECT id, line FROM pending ORDER BY id LIMIT ?", (limit,)
            )
        ]

    def ack(self, first_id: int, last_id: int) -> int:
        """Remove the delivered lines with ids in [first_id, last_id]."""
        with self._tx():
            n = self._db.execute(
                "DELETE FROM pending WHERE id BETWEEN ? AND ?", (first_id, last_id)
            ).rowcount
            self._bump("delivered", n)
        self._pending -= n
        return n

    def reject(self, entries: Sequence[tuple[int, str]], *, status: int, error: str) -> None:
        """Move lines the store refused into the dead-letter table, with its message."""
        now = time.time_ns()
        with self._tx():
            self._db.executemany(
                "INSERT INTO dead_letter(line, status, error, failed_ns) VALUES (?, ?, ?, ?)",
                [(line, status, error, now) for _, line in entries],
            )
            n = 0
            for i, _ in entries:
                n += self._db.execute("DELETE FROM pending WHERE id = ?", (i,)).rowcount
        self._pending -= n
        for _, line in entries:
            log.error("store rejected a line (HTTP %d: %s); kept as a dead letter: %.200s",
                      status, error, line)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return [
            DeadLetter(int(a), str(b), int(c), str(d), int(e))
            for a, b, c, d, e in self._db.execute(
                "SELECT id, line, status, error, failed_ns FROM dead_letter ORDER BY id LIMIT ?",
                (limit,),
            )
        ]

    def retry_dead_letters(self) -> int:
        """Put every dead letter back into the pending queue (after fixing the cause)."""
        now = time.time_ns()
        with self._tx():
            n = self._db.execute(
                "INSERT INTO pending(line, queued_ns) SELECT line, ? FROM dead_letter ORDER BY id",
                (now,),
            ).rowcount
            self._db.execute("DELETE FROM dead_letter")
        self._pending += n
        return n

    def drop_dead_letters(self) -> int:
        with self._tx():
            return self._db.execute("DELETE FROM dead_letter").rowcount

    def drop_pending(self) -> int:
        with self._tx():
            n = self._db.execute("DELETE FROM pending").rowcount
            self._bump("dropped", n)
        self._pending = 0
        return n

    def status(self) -> SpoolStatus:
        oldest = self._db.execute("SELECT min(queued_ns) FROM pending").fetchone()[0]
        return SpoolStatus(
            pending=self._pending,
            dead_letters=self._count("dead_letter"),
            dropped_total=self._counter("dropped"),
            delivered_total=self._counter("delivered"),
            oldest_queued_ns=int(oldest) if oldest is not None else None,
            path=self.path,
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
