"""The durable spool between collection and the store.

A reading counts as collected once its line is committed here (SQLite, WAL,
``synchronous=FULL`` for every commit that adds lines: it is synced to disk, so neither a
crash of the process nor a power loss takes back a committed chunk; the removal of
delivered chunks is not synced, as losing one only delivers its chunk again). The lines of
one job run are kept as one chunk (one row), which keeps the spool's cost per line small; a
chunk is stored as its lines' UTF-8 text, LZ4-compressed with a checksum (about a tenth of
the size, so a tenth of the pages to write, sync and free again; line protocol repeats its
series keys on every line). Chunks written as plain text by earlier versions are read as
they are. Delivery takes the oldest chunks and removes them only after the store accepted
their lines, so a store outage or a kill -9 loses nothing; a line the store rejects (HTTP
400/422) goes to the ``dead_letter`` table with the server's message, in the same
transaction that removes its chunk. Re-delivering a line after a crash is harmless: the same
series and timestamp overwrite in InfluxDB and in the embedded store. Another process using
the same file (a backfill while the daemon runs) is noticed at the next write, and the
pending lines are counted anew.

A write that fails (a full disk, a file at its size cap, any other write error, a thread
that does not answer within ``handover_s``) raises ``SpoolUnwritable``, is logged once per
change of state, and the lines of a job run it costs are counted (spool_state.py); the next
write that goes through ends the state. A failed write leaves no transaction open behind it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from collector.disk import STUCK, describe, reason_of
from collector.pipeline.spool_chunks import DamagedChunk, pack, unpack, unpack_text
from collector.pipeline.spool_file import CACHE_KIB, SCHEMA, DeadLetter, SpoolStatus, private_file
from collector.pipeline.spool_state import SpoolUnwritable, WriteHealth
from collector.pipeline.spool_tx import Transaction
from collector.pipeline.spool_writer import HandOverTimeout, SpoolThread, locked

__all__ = ["DamagedChunk", "DeadLetter", "Spool", "SpoolStatus", "SpoolUnwritable",
           "private_file"]

log = logging.getLogger(__name__)

#: The longest a job or a delivery waits for the spool's thread. A synced commit takes
#: milliseconds, seconds on a slow SD card; one that takes longer means a disk that hangs.
HANDOVER_S = 30.0
#: The longest closing waits for the spool's thread to finish what it writes.
CLOSE_WAIT_S = 5.0
_R = TypeVar("_R")

class Spool:
    """The on-disk buffer.

    Every method may be called from any thread (one at a time holds the connection).
    ``append_text_async`` and ``ack_async`` are committed on the spool's own thread, one
    after the other (collector/pipeline/spool_writer.py), so that the event loop never waits for the
    disk: a synced commit takes milliseconds, and tens of them while a
    store writes to the same file system, and meanwhile other jobs and deliveries go on.
    """

    def __init__(self, path: Path, *, max_lines: int = 5_000_000,
                 handover_s: float = HANDOVER_S) -> None:  # fmt: skip
        self.path = path
        self.max_lines = max_lines
        self.handover_s = handover_s
        #: whether writes go through; the lines of job runs lost while they did not
        self.health = WriteHealth(path)
        private_file(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.executescript(SCHEMA)
        #: changes only another connection's commit moves (another process's); read before
        #: the count, so that a commit in between is noticed at the first transaction
        self._data_version = self._version()
        self._pending = 0
        self._recount()
        self._lock = threading.RLock()
        self._writer = SpoolThread(self)
        self._durable = True  # synchronous=FULL, as set above
        # Delivery reads through a connection of its own: in WAL mode a reader never waits
        # for a writer, so a peek from the event loop does not wait the milliseconds that
        # a synced commit on the spool's thread takes. It sees committed chunks only.
        self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._reader.execute("PRAGMA query_only=ON")
        self._reader.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._reading = threading.Lock()

    def close(self) -> None:
        """Close the file; if the spool's thread is still writing after ``CLOSE_WAIT_S``
        (a disk that hangs), leave the file to the end of the process instead of waiting."""
        if not self._lock.acquire(timeout=CLOSE_WAIT_S):
            log.error("spool %s: still writing after %.0f s; closed without waiting for it",
                      self.path, CLOSE_WAIT_S)
            self._writer.close()
            return
        try:
            with self._reading:
                self._reader.close()
            self._db.close()
            self._writer.close()
        finally:
            self._lock.release()

    def busy_for(self) -> float:
        """How long the spool's thread has been in its current transaction (0 when idle)."""
        return self._writer.busy_for()

    async def append_text_async(self, text: str | bytes, n: int) -> int:
        """``append_text`` on the spool's thread (spool_writer.py). Lines it could not write
        are counted as lost (``health``) and ``SpoolUnwritable`` is raised."""
        if n <= 0:
            return 0
        dropped = await self._hand_over(lambda: self._insert(text, n), durable=True, lines=n)
        if dropped:
            self._said_full(dropped)
        return dropped

    async def ack_async(self, first_id: int, last_id: int, *,
                        rejected: Sequence[tuple[str, int, str]] = ()) -> int:  # fmt: skip
        """``ack`` on the spool's thread, like ``append_text_async``."""
        n = await self._hand_over(lambda: self._delete(first_id, last_id, rejected),
                                  durable=False)
        self._said_rejected(rejected)
        return n

    async def settled(self) -> int:
        """Once every append and acknowledgement queued before is committed: the lines
        pending, counted anew in the file (another process may have added or delivered
        chunks of its own meanwhile)."""
        return int(await self._hand_over(self._recount, durable=False))

    async def _hand_over(self, op: Callable[[], _R], *, durable: bool, lines: int = 0) -> _R:
        """``op`` on the spool's thread within ``handover_s``; a failure is told once
        (``health``) and raised as ``SpoolUnwritable``, its ``lines`` counted as lost."""
        try:
            result = await self._writer.run(op, durable=durable, timeout_s=self.handover_s)
        except HandOverTimeout as err:
            if err.under_way is None:
                self.health.lose(STUCK, lines)
            elif lines:
                self.health.lose_unless_written(lines, err.under_way)
            raise self.health.failed(STUCK, f"{err} (a disk that does not answer?)") from None
        except sqlite3.Error as err:
            reason = reason_of(err)
            self.health.lose(reason, lines)
            raise self.health.failed(reason, describe(err)) from err
        self.health.wrote(appended=lines > 0)
        return result

    def _recount(self) -> int:
        row = self._db.execute("SELECT coalesce(sum(n), 0) FROM pending").fetchone()
        self._pending = int(row[0])
        return self._pending

    @locked
    def run_in_transaction(self, op: Callable[[], _R], *, durable: bool) -> _R:
        """``op``'s result, in a transaction of its own; synced when ``durable``."""
        with self._tx(durable=durable):
            return op()

    def _bump(self, name: str, by: int) -> None:
        self._db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = value + excluded.value", (name, by))

    @property
    def pending(self) -> int:
        return self._pending

    def append(self, lines: Sequence[str]) -> int:
        """Commit ``lines`` as one chunk; return how many older lines were dropped to stay
        within ``max_lines``."""
        return self.append_text("\n".join(lines), len(lines))

    @locked
    def append_text(self, text: str | bytes, n: int) -> int:
        """``append`` for ``n`` lines already joined by newlines (as text, or its UTF-8
        bytes)."""
        if n <= 0:
            return 0
        try:
            with self._tx():
                dropped = self._insert(text, n)
        except sqlite3.Error as err:
            raise self.health.failed(reason_of(err), describe(err)) from err
        self.health.wrote(appended=True)
        if dropped:
            self._said_full(dropped)
        return dropped

    def _insert(self, text: str | bytes, n: int) -> int:
        """Insert a chunk (inside the caller's transaction); the lines dropped for room."""
        body = text.encode("utf-8") if isinstance(text, str) else text
        chunk_id = self._db.execute(
            "INSERT INTO pending(n, lines, queued_ns) VALUES (?, ?, ?)",
            (n, pack(body), time.time_ns()),
        ).lastrowid
        assert chunk_id is not None
        excess = self._pending + n - self.max_lines
        dropped = self._drop_oldest(excess) if excess > 0 else 0
        self._pending += n - dropped
        return dropped

    def _said_full(self, dropped: int) -> None:
        log.error(
            "spool is full (%d lines, limit spool.max_lines = %d): DROPPED the %d oldest "
            "lines; the store has been unreachable too long or max_lines is too small",
            self._pending, self.max_lines, dropped,
        )

    def _drop_oldest(self, excess: int) -> int:
        """Drop whole old chunks, then trim the oldest remaining one, until ``excess`` lines
        are gone (inside the caller's transaction)."""
        dropped = 0
        for chunk_id, n in self._db.execute("SELECT id, n FROM pending ORDER BY id").fetchall():
            if dropped >= excess:
                break
            if n <= excess - dropped:
                self._db.execute("DELETE FROM pending WHERE id = ?", (chunk_id,))
                dropped += n
            else:
                (stored,) = self._db.execute("SELECT lines FROM pending WHERE id = ?",
                                             (chunk_id,)).fetchone()  # fmt: skip
                keep = unpack_text(chunk_id, stored).split("\n")[excess - dropped:]
                self._db.execute("UPDATE pending SET n = ?, lines = ? WHERE id = ?",
                                 (len(keep), pack("\n".join(keep)), chunk_id))
                dropped = excess
        self._bump("dropped", dropped)
        return dropped

    def peek(self, limit: int, *, after_id: int = 0) -> list[tuple[int, list[str]]]:
        """The oldest chunks with an id above ``after_id`` as (id, lines): at least one,
        then as many as fit ``limit`` lines."""
        return [(chunk_id, text.split("\n"))
                for chunk_id, _, text in self.peek_text(limit, after_id=after_id)]

    def peek_text(self, limit: int, *, after_id: int = 0) -> list[tuple[int, int, str]]:
        """``peek`` with each chunk as (id, number of lines, the lines joined by newlines)."""
        return [(chunk_id, n, unpack_text(chunk_id, stored))
                for chunk_id, n, stored in self._peek(limit, after_id)]  # fmt: skip

    def peek_bodies(self, limit: int, *, after_id: int = 0) -> list[tuple[int, int, bytes]]:
        """``peek`` with each chunk as (id, number of lines, the lines' UTF-8 text joined by
        newlines): what a store's write request carries, without a copy per line."""
        return [(chunk_id, n, unpack(chunk_id, stored))
                for chunk_id, n, stored in self._peek(limit, after_id)]  # fmt: skip

    def _peek(self, limit: int, after_id: int) -> list[tuple[int, int, bytes | str]]:
        """The committed chunks after ``after_id``, read through the reader connection."""
        out: list[tuple[int, int, bytes | str]] = []
        total = 0
        with self._reading:
            rows = self._reader.execute(
                "SELECT id, n, lines FROM pending WHERE id > ? ORDER BY id", (after_id,))
            try:
                for chunk_id, n, stored in rows:
                    if out and total + n > limit:
                        break
                    out.append((int(chunk_id), int(n), stored))
                    total += int(n)
            finally:
                rows.close()  # ends the read: an open one would hold back checkpoints
        return out

    def oldest_id(self) -> int | None:
        """The id of the oldest committed pending chunk (None when nothing is pending)."""
        with self._reading:
            row = self._reader.execute("SELECT min(id) FROM pending").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def lines(self, limit: int = 1_000_000) -> list[str]:
        """The oldest pending lines, flattened (for inspection)."""
        return [line for _, chunk in self.peek(limit) for line in chunk][:limit]

    @locked
    def ack(self, first_id: int, last_id: int, *,
            rejected: Sequence[tuple[str, int, str]] = ()) -> int:
        """Remove the delivered chunks with ids in [first_id, last_id]; in the same
        transaction keep ``rejected`` (line, HTTP status, server message) as dead letters."""
        with self._tx(durable=False):
            n = self._delete(first_id, last_id, rejected)
        self._said_rejected(rejected)
        return n

    def _delete(self, first_id: int, last_id: int,
                rejected: Sequence[tuple[str, int, str]]) -> int:  # fmt: skip
        """``ack`` inside the caller's transaction; the lines removed."""
        if rejected:
            now = time.time_ns()
            self._db.executemany(
                "INSERT INTO dead_letter(line, status, error, failed_ns) VALUES (?, ?, ?, ?)",
                [(line, status, error, now) for line, status, error in rejected],
            )
        row = self._db.execute(
            "SELECT coalesce(sum(n), 0) FROM pending WHERE id BETWEEN ? AND ?",
            (first_id, last_id),
        ).fetchone()
        n = int(row[0])
        self._db.execute("DELETE FROM pending WHERE id BETWEEN ? AND ?", (first_id, last_id))
        self._bump("delivered", n - len(rejected))
        self._pending -= n
        return n

    @staticmethod
    def _said_rejected(rejected: Sequence[tuple[str, int, str]]) -> None:
        for line, status, error in rejected:
            log.error("store rejected a line (HTTP %d: %s); kept as a dead letter: %.200s",
                      status, error, line)

    @locked
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.execute("SELECT id, line, status, error, failed_ns FROM dead_letter "
                                "ORDER BY id LIMIT ?", (limit,))  # fmt: skip
        return [DeadLetter(int(a), str(b), int(c), str(d), int(e)) for a, b, c, d, e in rows]

    @locked
    def retry_dead_letters(self) -> int:
        """Put every dead letter back into the pending queue (after fixing the cause)."""
        now = time.time_ns()
        with self._tx():
            found = [str(r[0]) for r in
                     self._db.execute("SELECT line FROM dead_letter ORDER BY id").fetchall()]
            n = len(found)
            if found:
                self._db.execute(
                    "INSERT INTO pending(n, lines, queued_ns) VALUES (?, ?, ?)",
                    (n, pack("\n".join(found)), now),
                )
            self._db.execute("DELETE FROM dead_letter")
            self._pending += n
        return n

    @locked
    def drop_dead_letters(self) -> int:
        with self._tx():
            return self._db.execute("DELETE FROM dead_letter").rowcount

    @locked
    def drop_pending(self) -> int:
        """Drop every pending line; how many there were."""
        with self._tx():
            n = self._recount()
            self._db.execute("DELETE FROM pending")
            self._bump("dropped", n)
            self._pending = 0
        return n

    def status(self) -> SpoolStatus:
        """Read through the reader connection: never waits for the spool's thread."""
        with self._reading:
            oldest = self._reader.execute("SELECT min(queued_ns) FROM pending").fetchone()[0]
            dead = self._reader.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
            counters = dict(self._reader.execute("SELECT name, value FROM counters"))
        return SpoolStatus(
            pending=self._pending,
            dead_letters=int(dead),
            dropped_total=int(counters.get("dropped", 0)),
            delivered_total=int(counters.get("delivered", 0)),
            oldest_queued_ns=int(oldest) if oldest is not None else None,
            path=self.path,
        )

    def _tx(self, *, durable: bool = True) -> Transaction:
        """A transaction, synced to disk at commit when ``durable``. Acknowledgements need
        not be: one lost with a power cut only sends its chunk to the store again, which
        rewrites the same points (and a line refused again is kept again)."""
        if durable != self._durable:
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable
        return Transaction(self)

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _begun(self) -> None:
        """A transaction began: if another process changed the file since this one last
        wrote (a backfill's appends and deliveries), count the pending lines anew."""
        version = self._version()
        if version != self._data_version:
            self._data_version = version
            self._recount()
