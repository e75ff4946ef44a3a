"""The chunks a spool committed lately, kept in memory for delivery.

A chunk is delivered moments after it was committed, most of the time while its UTF-8 text
is still at hand: reading it back from the file would cost a query and an LZ4
decompression per chunk (and in WAL mode a reader never waits for a writer, but the text
still has to come out of the file). So the spool hands delivery what it holds, but only
while it holds every pending chunk: ``missing`` counts the committed pending lines not held
(those from before a restart, those of a chunk that did not fit, those another process
committed). While any are missing, delivery reads the file, oldest first, as without this.

Everything here changes only after the spool's transaction committed, under the spool's
lock; delivery reads from the event loop's thread, so a small lock of its own guards it.
"""

from __future__ import annotations

import threading

#: The most text held at once: a few batches' worth. More pending than that (a store that
#: has been away) is read from the file.
MAX_HELD_BYTES = 8 * 1024 * 1024


class Held:
    """Pending chunks by id (ascending), as (number of lines, UTF-8 text)."""

    def __init__(self, missing: int, max_bytes: int = MAX_HELD_BYTES) -> None:
        self._chunks: dict[int, tuple[int, bytes]] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        #: committed pending lines not held here
        self.missing = missing
        #: False once the count went wrong: the file alone, until ``forget`` counts anew
        self._counted = True
        self._lock = threading.Lock()

    @property
    def counted(self) -> bool:
        """False once the count went wrong, until ``forget`` counts anew."""
        return self._counted

    def added(self, chunk_id: int, n: int, body: bytes) -> None:
        """A chunk was committed (its id is higher than any held)."""
        with self._lock:
            if self._bytes + len(body) <= self._max_bytes:
                self._chunks[chunk_id] = (n, body)
                self._bytes += len(body)
            else:
                self.missing += n

    def removed(self, first_id: int, last_id: int, n: int) -> None:
        """The pending chunks with ids in [first_id, last_id], ``n`` lines in all, were
        deleted."""
        with self._lock:
            held = 0
            for chunk_id in [i for i in self._chunks if first_id <= i <= last_id]:
                lines, body = self._chunks.pop(chunk_id)
                held += lines
                self._bytes -= len(body)
            self.missing -= n - held
            if self.missing < 0:  # counted wrong somewhere: trust the file alone
                self._forget(0)
                self._counted = False

    def forget(self, pending: int) -> None:
        """Hold nothing: the ``pending`` lines are all to be read from the file (after
        changes this does not follow chunk by chunk, or another process's)."""
        with self._lock:
            self._forget(pending)

    def _forget(self, pending: int) -> None:
        self._chunks.clear()
        self._bytes = 0
        self.missing = pending
        self._counted = True

    def peek(self, limit: int, after_id: int) -> list[tuple[int, int, bytes]] | None:
        """The pending chunks with an id above ``after_id`` (at least one, then as many as
        fit ``limit`` lines) as (id, number of lines, UTF-8 text); None when some pending
        lines are not held and the file has to be read."""
        with self._lock:
            if self.missing or not self._counted:
                return None
            out: list[tuple[int, int, bytes]] = []
            total = 0
            for chunk_id, (n, body) in self._chunks.items():
                if chunk_id <= after_id:
                    continue
                if out and total + n > limit:
                    break
                out.append((chunk_id, n, body))
                total += n
            return out
