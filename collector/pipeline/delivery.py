"""Delivery from the spool to the store: batches, backoff, Retry-After, dead letters.

A store that offers ``write_body(body, n)`` (the lines' UTF-8 text joined by newlines, as
the spool keeps them) is handed a batch of whole chunks that way, without a string per
line; the lines are only split apart when the store refuses the batch and the bad ones are
looked for. Any other store gets ``write(lines)``.

Nothing here waits without bound: a drain ends at its deadline even while batches are under
way (they are cancelled; their chunks stay in the spool), and ``run`` gives the batches under
way ``stop_wait_s`` once it is told to stop. A spool that cannot record a delivery (its disk
is full) is an outage like the store's: the batch stays pending and is sent again later,
which rewrites the same points.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from collector.errors import (
    StoreAuthError,
    StoreError,
    StoreRejected,
    StoreTooLarge,
    StoreUnavailable,
)
from collector.pipeline.spool import Spool, SpoolUnwritable
from collector.stores.base import Store, StoreGarbled

log = logging.getLogger(__name__)


@dataclass
class DeliveryStats:
    delivered: int = 0
    rejected: int = 0
    failures: int = 0
    last_error: str | None = None
    next_attempt: float = 0.0  # time.monotonic() before which we do not try
    consecutive_failures: int = field(default=0)


class Deliverer:
    """Moves lines from the spool to the store, oldest first."""

    def __init__(
        self,
        spool: Spool,
        store: Store,
        *,
        batch_lines: int = 5_000,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        flush_interval_s: float = 2.0,
        max_in_flight: int = 3,
        garbled_attempts: int = 3,
        stop_wait_s: float = 10.0,
    ) -> None:
        self.stop_wait_s = stop_wait_s
        self.garbled_attempts = garbled_attempts
        self.max_in_flight = max_in_flight
        self.spool = spool
        self.store = store
        self.batch_lines = batch_lines
        self._batch = batch_lines
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.flush_interval_s = flush_interval_s
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()
        # first chunk id of a batch -> unreadable answers it got in a row
        self._garbled: dict[int, int] = {}
        # first chunk ids of batches that failed and are not delivered yet
        self._failing: set[int] = set()
        # first chunk ids of the batches ``run`` sent that the store has not answered yet
        self._writing: set[int] = set()

    def wake(self) -> None:
        """New lines arrived: deliver soon."""
        self._wake.set()

    def _backoff(self, retry_after: float | None) -> float:
        self.stats.consecutive_failures += 1
        if retry_after is not None and retry_after >= 0:
            delay = min(self.max_backoff_s, retry_after)
        else:
            exp = self.base_backoff_s * 2 ** min(self.stats.consecutive_failures - 1, 20)
            delay = min(self.max_backoff_s, exp) * random.uniform(0.8, 1.2)
        self.stats.next_attempt = time.monotonic() + delay
        return delay

    def _healthy(self) -> None:
        if self._failing:  # a later batch went through; does an earlier one still wait?
            oldest = self.spool.oldest_id()
            self._failing = {i for i in self._failing if oldest is not None and i >= oldest}
            self._garbled = {i: n for i, n in self._garbled.items() if i in self._failing}
            if self._failing:
                return
        if self.stats.consecutive_failures:
            log.warning("store %s takes lines again after %d failed attempts; %d lines left "
                        "in the spool", self.store.name, self.stats.consecutive_failures,
                        self.spool.pending)
        self.stats.consecutive_failures = 0
        self.stats.last_error = None
        self.stats.next_attempt = 0.0

    async def deliver_batch(self) -> int:
        """Deliver the oldest chunks (about ``batch_lines`` lines); return how many lines
        were stored or dead-lettered.

        Raises ``StoreUnavailable``/``StoreAuthError`` when the store cannot take lines now;
        the chunks then stay pending, whole.
        """
        return await self._deliver(self.spool.peek_bodies(self._batch))

    async def _deliver(self, chunks: list[tuple[int, int, bytes]]) -> int:
        if not chunks:
            return 0
        first, last = chunks[0][0], chunks[-1][0]
        rejected: list[tuple[str, int, str]] = []
        total = 0
        # After ``garbled_attempts`` unreadable answers in a row for this batch, look for the
        # line that causes them, as for a rejection: an outage on the way still raises.
        isolate = self._garbled.get(first, 0) >= self.garbled_attempts
        write_body: Callable[[bytes, int], Awaitable[None]] | None = getattr(
            self.store, "write_body", None)  # fmt: skip
        n_lines = sum(n for _, n, _ in chunks)
        try:
            if write_body is not None and n_lines <= self._batch:
                await self._write_body(write_body, b"\n".join(body for _, _, body in chunks),
                                       n_lines, rejected, isolate=isolate)  # fmt: skip
                total = n_lines
            else:
                # a chunk larger than a batch goes in slices
                texts = [(n, body.decode("utf-8")) for _, n, body in chunks]
                for lines in _batches(texts, self._batch):
                    await self._write(lines, rejected, isolate=isolate)
                    total += len(lines)
        except StoreGarbled:
            self._garbled[first] = self._garbled.get(first, 0) + 1
            self._failing.add(first)
            raise
        except StoreError:
            self._failing.add(first)
            raise
        finally:
            # the store has answered: ``run`` may send the next batch while this one's
            # acknowledgement waits for the spool's thread (its commit may wait for a
            # sync of other writes); its lines are not needed any more
            self._writing.discard(first)
            chunks.clear()
            self.wake()
        self._garbled.pop(first, None)
        self._failing = {i for i in self._failing if not first <= i <= last}
        await self.spool.ack_async(first, last, rejected=rejected)
        self.stats.delivered += total - len(rejected)
        self.stats.rejected += len(rejected)
        return total

    async def _write(self, lines: list[str], rejected: list[tuple[str, int, str]], *,
                     isolate: bool = False) -> None:
        """Write ``lines``; halve on 413 and, to find the bad lines, on 400/422 (and, when
        ``isolate``, on unreadable answers: such a line is kept with HTTP status 0).

        Re-writing good lines while halving is harmless: the same series and timestamp
        overwrite.
        """
        try:
            await self.store.write(lines)
        except (StoreRejected, StoreGarbled, StoreTooLarge) as err:
            refused: StoreError = err
        else:
            return
        await self._refused(lines, refused, rejected, isolate=isolate)

    async def _write_body(self, write_body: Callable[[bytes, int], Awaitable[None]],
                          body: bytes, n: int, rejected: list[tuple[str, int, str]], *,
                          isolate: bool = False) -> None:  # fmt: skip
        """``_write`` for the ``n`` lines of ``body``, split apart only when refused."""
        try:
            await write_body(body, n)
        except (StoreRejected, StoreGarbled, StoreTooLarge) as err:
            refused: StoreError = err
        else:
            return
        await self._refused(body.decode("utf-8").split("\n"), refused, rejected, isolate=isolate)

    async def _refused(self, lines: list[str], err: StoreError,
                       rejected: list[tuple[str, int, str]], *, isolate: bool) -> None:  # fmt: skip
        """What ``_write`` does when the store refused ``lines`` with ``err``."""
        if isinstance(err, StoreRejected):
            if len(lines) == 1:
                rejected.append((lines[0], err.status, str(err)))
                return
        elif isinstance(err, StoreGarbled):
            if not isolate:
                raise err  # a garbled answer is an outage until ``isolate``
            if len(lines) == 1:
                rejected.append((lines[0], 0, str(err)))
                return
        else:  # StoreTooLarge
            if len(lines) == 1:
                rejected.append((lines[0], 413, "line larger than the store accepts"))
                return
            self._batch = max(1, min(self._batch, len(lines) // 2))
            log.warning("store %s: request too large; batches now about %d lines",
                        self.store.name, self._batch)
        mid = len(lines) // 2
        await self._write(lines[:mid], rejected, isolate=isolate)
        await self._write(lines[mid:], rejected, isolate=isolate)

    async def drain(self, *, deadline_s: float | None = None) -> bool:
        """Deliver until the spool is empty; False if the store failed or time ran out.

        As in ``run``, up to ``max_in_flight`` batches are under way at once while the
        store is healthy (one after a failure), the next sent as soon as one is answered,
        so that a backlog (at shutdown, after a backfill) goes at the speed the store takes
        lines, not at one request's pace. After a failure or past the deadline no new batch
        starts; those under way finish.
        """
        end = None if deadline_s is None else time.monotonic() + deadline_s
        inflight: dict[asyncio.Task[int], int] = {}  # -> the last chunk id of its batch
        failure: StoreError | None = None
        spool_failed = False
        settled = False
        while True:
            limit = 1 if self.stats.consecutive_failures else self.max_in_flight
            late = end is not None and time.monotonic() >= end
            while failure is None and not spool_failed and not late and len(inflight) < limit:
                after = max(inflight.values(), default=0)
                chunks = self.spool.peek_bodies(self._batch, after_id=after)
                if not chunks:
                    break
                inflight[asyncio.create_task(self._deliver(chunks))] = chunks[-1][0]
            if not inflight:
                if failure is not None:
                    self._record_failure(failure)
                    return False
                if spool_failed or (late and self.spool.pending):
                    return False
                if not self.spool.pending or settled:
                    return not self.spool.pending
                # lines pending but none committed to read: appends under way on the
                # spool's thread, or lines another process delivered; wait, count anew
                try:
                    await self.spool.settled()
                except SpoolUnwritable:
                    return False
                settled = True
                continue
            settled = False
            left = None if end is None else max(0.0, end - time.monotonic())
            done, _ = await asyncio.wait(inflight, timeout=left,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:  # the deadline passed with batches under way: they stay pending
                for task in inflight:
                    task.cancel()
                await asyncio.wait(inflight)
                return False
            for task in done:
                inflight.pop(task)
                err = task.exception()
                if err is None:
                    self._healthy()
                elif isinstance(err, StoreUnavailable | StoreAuthError):
                    failure = failure or err
                elif isinstance(err, SpoolUnwritable):  # told once by the spool
                    spool_failed = True
                else:
                    for other in inflight:
                        other.cancel()
                    raise err

    def _record_failure(self, err: StoreError) -> float:
        retry_after = err.retry_after if isinstance(err, StoreUnavailable) else None
        if isinstance(err, StoreAuthError):
            retry_after = self.max_backoff_s
        message = f"{type(err).__name__}: {err}"
        delay = self._backoff(retry_after)
        self.stats.failures += 1
        if message != self.stats.last_error:
            log.warning("store %s: %s; %d lines wait in the spool, next try in %.1f s",
                        self.store.name, message, self.spool.pending, delay)
        self.stats.last_error = message
        return delay

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set.

        A full batch goes out at once; a partial one waits until ``flush_interval_s`` has
        passed since the last delivery, so that many small polls make few large writes.
        While the store is healthy up to ``max_in_flight`` batches are under way, so that
        the store works on one while the next is prepared; after a failure one batch at a
        time probes until the store takes lines again. Order between batches does not
        matter: every point carries its own timestamp.
        """
        last_delivery = time.monotonic()
        inflight: dict[asyncio.Task[int], tuple[int, int]] = {}  # -> (last chunk id, lines)
        while not stop.is_set():
            for task in [t for t in inflight if t.done()]:
                inflight.pop(task)
                if self._settle(task):
                    last_delivery = time.monotonic()
            now = time.monotonic()
            queued = self.spool.pending - sum(n for _, n in inflight.values())
            limit = 1 if self.stats.consecutive_failures else self.max_in_flight
            wait = self.flush_interval_s
            if queued > 0 and now < self.stats.next_attempt:
                wait = self.stats.next_attempt - now
            elif queued > 0 and len(self._writing) < limit and (
                queued >= self._batch or now - last_delivery >= self.flush_interval_s
            ):
                after = max((last for last, _ in inflight.values()), default=0)
                chunks = self.spool.peek_bodies(self._batch, after_id=after)
                if chunks:
                    self._writing.add(chunks[0][0])
                    task = asyncio.create_task(self._deliver(chunks))
                    inflight[task] = (chunks[-1][0], sum(n for _, n, _ in chunks))
                    await asyncio.sleep(0)
                    continue
            elif queued > 0:
                wait = self.flush_interval_s - (now - last_delivery)
            self._wake.clear()
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
            if not self.stats.consecutive_failures:
                waiters.append(asyncio.ensure_future(self._wake.wait()))
            pending: list[asyncio.Future[Any]] = [*waiters, *inflight]
            await asyncio.wait(pending, timeout=max(0.0, wait),
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        if inflight:  # let batches under way finish; what fails stays in the spool
            await asyncio.wait(inflight, timeout=self.stop_wait_s)
            for task in inflight:
                if task.done():
                    self._settle(task)
                else:
                    task.cancel()

    def _settle(self, task: asyncio.Task[int]) -> bool:
        """Account for a finished delivery task; True if it delivered."""
        if task.cancelled():
            return False
        err = task.exception()
        if err is None:
            self._healthy()
            return True
        if isinstance(err, StoreUnavailable | StoreAuthError):
            self._record_failure(err)
        elif isinstance(err, SpoolUnwritable):  # told once by the spool; sent again later
            self._backoff(None)
        else:
            log.error("unexpected error while delivering to %s: %r", self.store.name, err)
            self._backoff(None)
        return False


def _batches(chunks: Iterable[tuple[int, str]], size: int) -> Iterator[list[str]]:
    """The lines of ``chunks`` ((number of lines, lines joined by newlines) pairs) in lists
    of ``size``. A chunk larger than that (a statistics round: some 20,000 lines) is split
    one list at a time, never held as one string object per line: that keeps the daemon's
    resident memory low."""
    batch: list[str] = []
    for n, text in chunks:
        if len(batch) + n <= size:  # the usual case: split at C speed
            batch += text.split("\n")
        else:
            start = 0
            while (end := text.find("\n", start)) >= 0:
                batch.append(text[start:end])
                start = end + 1
                if len(batch) >= size:
                    yield batch
                    batch = []
            batch.append(text[start:])
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
