"""The spool's thread: appends and acknowledgements from the event loop, committed on the
spool's thread; each caller answered once its lines are on disk."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from collector.pipeline.spool import Spool

_R = TypeVar("_R")


class CountingSpool(Spool):
    """A spool that records how many operations each transaction carried, and whether it
    was synced."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.transactions: list[tuple[int, bool]] = []

    def run_in_transaction(self, op: Callable[[], _R], *, durable: bool) -> _R:
        self.transactions.append((1, durable))
        return super().run_in_transaction(op, durable=durable)


def _chunk(i: int) -> str:
    return f"power_w,device=plug{i} value={i}.5 {1_700_000_000 + i}000000000"


def test_a_failing_operation_costs_only_itself(tmp_path: Path) -> None:
    spool = CountingSpool(tmp_path / "spool.sqlite3")

    def broken() -> int:
        spool._db.execute("INSERT INTO no_such_table VALUES (1)")
        return 1

    async def go() -> list[object]:
        with spool._lock:
            tasks = [
                asyncio.create_task(spool.append_text_async(_chunk(1), 1)),
                asyncio.create_task(spool._writer.run(broken)),
                asyncio.create_task(spool.append_text_async(_chunk(2), 1)),
            ]
            await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    first, failed, second = asyncio.run(go())
    assert (first, second) == (0, 0)
    assert isinstance(failed, Exception) and "no_such_table" in str(failed)
    assert spool.pending == 2
    assert sorted(spool.lines()) == [_chunk(1), _chunk(2)]
    spool.close()


def test_a_cancelled_caller_still_has_its_lines_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")

    async def go() -> None:
        with spool._lock:
            cancelled = asyncio.create_task(spool.append_text_async(_chunk(1), 1))
            await asyncio.sleep(0)
            cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await spool.append_text_async(_chunk(2), 1)

    asyncio.run(go())
    assert spool.pending == 2
    assert sorted(spool.lines()) == [_chunk(1), _chunk(2)]
    spool.close()


def test_acknowledgements_remove_delivered_chunks_and_keep_rejected_lines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    spool = Spool(tmp_path / "spool.sqlite3")

    async def go() -> int:
        for i in range(3):
            await spool.append_text_async(_chunk(i), 1)
        ((first, _, _), _, (last, _, _)) = spool.peek_bodies(10)
        return await spool.ack_async(first, last, rejected=[(_chunk(1), 400, "bad field")])

    assert asyncio.run(go()) == 3
    assert spool.pending == 0
    assert [(d.line, d.status, d.error) for d in spool.dead_letters()] == [
        (_chunk(1), 400, "bad field")]
    assert spool.status().delivered_total == 2
    assert "kept as a dead letter" in caplog.text
    spool.close()


def test_a_full_spool_drops_the_oldest_lines_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    spool = Spool(tmp_path / "spool.sqlite3", max_lines=3)

    async def go() -> list[int]:
        return [await spool.append_text_async(_chunk(i), 1) for i in range(5)]

    assert asyncio.run(go()) == [0, 0, 0, 1, 1]
    assert spool.pending == 3
    assert sorted(spool.lines()) == sorted(_chunk(i) for i in (2, 3, 4))
    assert "DROPPED the 1 oldest" in caplog.text
    spool.close()


def test_acknowledgements_alone_are_not_synced_appends_always_are(tmp_path: Path) -> None:
    """A lost acknowledgement only delivers its chunk again; a lost append loses readings."""
    spool = CountingSpool(tmp_path / "spool.sqlite3")

    def synchronous() -> int:  # SQLite: 1 = NORMAL (no sync at commit), 2 = FULL
        return int(spool._db.execute("PRAGMA synchronous").fetchone()[0])

    async def go() -> list[int]:
        modes = []
        await spool.append_text_async(_chunk(1), 1)
        modes.append(synchronous())
        ((first, _, _),) = spool.peek_bodies(10)
        await spool.ack_async(first, first)
        modes.append(synchronous())
        with spool._lock:  # an append and an acknowledgement waiting together
            tasks = [asyncio.create_task(spool.append_text_async(_chunk(2), 1)),
                     asyncio.create_task(spool.ack_async(first, first))]  # fmt: skip
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return modes

    assert asyncio.run(go()) == [2, 1]
    assert spool.transactions[:2] == [(1, True), (1, False)]
    # the append is synced, the acknowledgement after it is not
    assert spool.transactions[2:] in ([(2, True)], [(1, True), (1, False)])
    assert spool.pending == 1
    spool.close()


def test_a_batch_frees_its_delivery_slot_once_the_store_answered(tmp_path: Path) -> None:
    """The next batch goes out while the acknowledgement of the last one still waits for
    the spool's thread (its commit may be waiting for a sync)."""
    from collector.pipeline.delivery import Deliverer
    from tests.pipeline.test_spool import MemoryStore

    spool = Spool(tmp_path / "spool.sqlite3")
    for i in range(6):
        spool.append_text(_chunk(i), 1)
    store = MemoryStore()
    deliverer = Deliverer(spool, store, batch_lines=2, flush_interval_s=0.01, max_in_flight=1)

    async def go() -> tuple[int, int]:
        stop = asyncio.Event()
        with spool._lock:  # the spool's thread cannot commit any acknowledgement yet
            running = asyncio.create_task(deliverer.run(stop))
            for _ in range(200):
                if len(store.lines) == 6:
                    break
                await asyncio.sleep(0.01)
            written, pending = len(store.lines), spool.pending
        stop.set()
        await running
        return written, pending

    written, pending_while_blocked = asyncio.run(go())
    assert (written, pending_while_blocked) == (6, 6)  # all three batches sent, none acked
    assert store.calls == [2, 2, 2]
    assert spool.pending == 0
    assert spool.status().delivered_total == 6
    spool.close()


def test_delivery_reads_committed_chunks_while_a_commit_is_under_way(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append([_chunk(1)])
    inside = threading.Event()
    release = threading.Event()

    def slow_append() -> None:
        # the spool's thread in the middle of a transaction: the connection is held,
        # a line inserted but not committed
        def op() -> int:
            dropped = spool._insert(_chunk(2), 1)
            inside.set()
            release.wait(30)
            return dropped

        spool.run_in_transaction(op, durable=True)

    writer = threading.Thread(target=slow_append)
    writer.start()
    try:
        assert inside.wait(30)
        peeked: list[list[tuple[int, int, bytes]]] = []
        reader = threading.Thread(target=lambda: peeked.append(spool.peek_bodies(10)))
        reader.start()
        reader.join(10)
        assert not reader.is_alive(), "a peek waited for the commit under way"
        assert [(n, body) for _, n, body in peeked[0]] == [(1, _chunk(1).encode())]
        assert spool.oldest_id() == peeked[0][0][0]
    finally:
        release.set()
        writer.join(30)
    assert [(n, body) for _, n, body in spool.peek_bodies(10)] == [
        (1, _chunk(1).encode()), (1, _chunk(2).encode())]
    spool.close()
