"""Delivery from the spool to the store: batches, backoff, Retry-After, dead letters."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from collector.errors import (
    StoreAuthError,
    StoreError,
    StoreRejected,
    StoreTooLarge,
    StoreUnavailable,
)
from collector.spool import Spool
from collector.stores.base import Store

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
    ) -> None:
        self.spool = spool
        self.store = store
        self.batch_lines = batch_lines
        self._batch = batch_lines
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.flush_interval_s = flush_interval_s
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New lines arrived: deliver soon."""
        self._wake.set()

    def _backoff(self, retry_after: float | None) -> float:
        self.stats.consecutive_failures += 1
        if retry_after is not None and retry_after >= 0:
            delay = retry_after
        else:
            exp = self.base_backoff_s * 2 ** min(self.stats.consecutive_failures - 1, 20)
            delay = min(self.max_backoff_s, exp) * random.uniform(0.8, 1.2)
        self.stats.next_attempt = time.monotonic() + delay
        return delay

    def _healthy(self) -> None:
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
        chunks = self.spool.peek(self._batch)
        if not chunks:
            return 0
        lines = [line for _, chunk in chunks for line in chunk]
        rejected: list[tuple[str, int, str]] = []
        step = self._batch
        for i in range(0, len(lines), step):  # a chunk larger than a batch goes in slices
            await self._write(lines[i:i + step], rejected)
        self.spool.ack(chunks[0][0], chunks[-1][0], rejected=rejected)
        self.stats.delivered += len(lines) - len(rejected)
        self.stats.rejected += len(rejected)
        return len(lines)

    async def _write(self, lines: list[str], rejected: list[tuple[str, int, str]]) -> None:
        """Write ``lines``; halve on 413 and, to find the bad lines, on 400/422.

        Re-writing good lines while halving is harmless: the same series and timestamp
        overwrite.
        """
        try:
            await self.store.write(lines)
        except StoreRejected as err:
            if len(lines) == 1:
                rejected.append((lines[0], err.status, str(err)))
                return
        except StoreTooLarge:
            if len(lines) == 1:
                rejected.append((lines[0], 413, "line larger than the store accepts"))
                return
            self._batch = max(1, min(self._batch, len(lines) // 2))
            log.warning("store %s: request too large; batches now about %d lines",
                        self.store.name, self._batch)
        else:
            return
        mid = len(lines) // 2
        await self._write(lines[:mid], rejected)
        await self._write(lines[mid:], rejected)

    async def drain(self, *, deadline_s: float | None = None) -> bool:
        """Deliver until the spool is empty; False if the store failed or time ran out."""
        end = None if deadline_s is None else time.monotonic() + deadline_s
        while self.spool.pending:
            if end is not None and time.monotonic() >= end:
                return False
            try:
                await self.deliver_batch()
            except (StoreUnavailable, StoreAuthError) as err:
                self._record_failure(err)
                return False
            else:
                self._healthy()
        return True

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
        """
        last_delivery = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            pending = self.spool.pending
            wait = self.flush_interval_s
            if pending and now < self.stats.next_attempt:
                wait = self.stats.next_attempt - now
            elif pending >= self._batch or (
                pending and now - last_delivery >= self.flush_interval_s
            ):
                try:
                    await self.deliver_batch()
                except (StoreUnavailable, StoreAuthError) as err:
                    wait = self._record_failure(err)
                except Exception:
                    log.exception("unexpected error while delivering to %s", self.store.name)
                    wait = self._backoff(None)
                else:
                    self._healthy()
                    last_delivery = time.monotonic()
                    if self.spool.pending >= self._batch:
                        await asyncio.sleep(0)
                        continue
                    wait = self.flush_interval_s
            elif pending:
                wait = self.flush_interval_s - (now - last_delivery)
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait())]
            if not self.stats.consecutive_failures:
                waiters.append(asyncio.ensure_future(self._wake.wait()))
            _, rest = await asyncio.wait(waiters, timeout=max(0.0, wait),
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in rest:
                task.cancel()
