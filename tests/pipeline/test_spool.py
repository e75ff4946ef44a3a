from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from collector.errors import StoreRejected, StoreTooLarge, StoreUnavailable
from collector.pipeline.delivery import Deliverer
from collector.pipeline.spool import DamagedChunk, Spool


class MemoryStore:
    """A store that keeps lines in a list and fails on request."""

    name = "memory"

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.calls: list[int] = []
        self.fail_with: list[Exception] = []
        self.bad: set[str] = set()
        self.max_batch: int | None = None

    async def write(self, lines: Sequence[str]) -> None:
        self.calls.append(len(lines))
        if self.fail_with:
            raise self.fail_with.pop(0)
        if self.max_batch is not None and len(lines) > self.max_batch:
            raise StoreTooLarge("413")
        good = [ln for ln in lines if ln not in self.bad]
        self.lines.extend(good)  # like InfluxDB: a partial write keeps the good lines
        if len(good) != len(lines):
            raise StoreRejected('partial write: field type conflict dropped=1', status=400)

    async def check(self) -> str:
        return "ok"

    async def aclose(self) -> None:
        pass


class BodyStore(MemoryStore):
    """A store that also takes whole batches as one UTF-8 body, like the InfluxDB stores."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[tuple[bytes, int]] = []

    async def write_body(self, body: bytes, n: int) -> None:
        self.bodies.append((body, n))
        await self.write(body.decode("utf-8").split("\n"))


def lines(n: int, start: int = 0) -> list[str]:
    return [f"power_w,device_id=d{i % 7},site=s,source=fritzbox value={i}.5 {i}" for i in
            range(start, start + n)]


def test_spool_file_is_private_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "spool.sqlite3"
    sp = Spool(path)
    sp.append(lines(10))
    sp.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Spool(path)
    assert again.pending == 10
    assert again.lines(3) == lines(3)


def test_bound_drops_oldest_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sp = Spool(tmp_path / "s.db", max_lines=100)
    sp.append(lines(80))
    with caplog.at_level(logging.ERROR):
        dropped = sp.append(lines(50, start=80))
    assert dropped == 30
    assert sp.pending == 100
    assert sp.lines(1) == lines(1, start=30)
    assert sp.status().dropped_total == 30
    assert "DROPPED the 30 oldest lines" in caplog.text


def test_delivery_in_batches_in_order(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(12))
    store = MemoryStore()
    d = Deliverer(sp, store, batch_lines=5)
    assert asyncio.run(d.drain()) is True
    assert store.calls == [5, 5, 2]
    assert store.lines == lines(12)
    assert sp.pending == 0
    assert sp.status().delivered_total == 12


def test_outage_keeps_lines_and_backs_off_with_retry_after(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(4))
    store = MemoryStore()
    store.fail_with = [StoreUnavailable("503", retry_after=42.0)]
    d = Deliverer(sp, store)
    assert asyncio.run(d.drain()) is False
    assert sp.pending == 4
    assert store.lines == []
    assert d.stats.consecutive_failures == 1
    # Retry-After wins over the exponential backoff
    import time

    assert 41.0 < d.stats.next_attempt - time.monotonic() <= 42.0
    assert asyncio.run(d.drain()) is True
    assert store.lines == lines(4)


def test_exponential_backoff_grows_and_is_capped(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    d = Deliverer(sp, MemoryStore(), base_backoff_s=1.0, max_backoff_s=10.0)
    delays = [d._backoff(None) for _ in range(8)]
    assert 0.8 <= delays[0] <= 1.2
    assert 1.6 <= delays[1] <= 2.4
    assert 3.2 <= delays[2] <= 4.8
    assert all(8.0 <= x <= 12.0 for x in delays[4:])


def test_rejected_lines_become_dead_letters_with_message(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    batch = lines(9)
    sp.append(batch)
    store = MemoryStore()
    store.bad = {batch[2], batch[7]}
    d = Deliverer(sp, store)
    assert asyncio.run(d.drain()) is True
    assert sp.pending == 0
    dead = sp.dead_letters()
    assert [x.line for x in dead] == [batch[2], batch[7]]
    assert all(x.status == 400 for x in dead)
    assert all("field type conflict" in x.error for x in dead)
    # every good line arrived (possibly re-written, which the store treats as overwrite)
    assert set(store.lines) == set(batch) - store.bad
    # the dead letters can be queued again once the cause is fixed
    store.bad.clear()
    assert sp.retry_dead_letters() == 2
    assert asyncio.run(d.drain()) is True
    assert sp.dead_letters() == []
    assert set(store.lines) == set(batch)


def test_too_large_halves_the_batch(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(10))
    store = MemoryStore()
    store.max_batch = 3
    d = Deliverer(sp, store, batch_lines=10)
    assert asyncio.run(d.drain()) is True
    assert store.lines == lines(10)
    assert d._batch <= 3


def test_chunks_are_batched_up_to_the_limit(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    for i in range(5):
        sp.append(lines(4, start=4 * i))
    assert [len(c) for _, c in sp.peek(9)] == [4, 4]
    assert [len(c) for _, c in sp.peek(2)] == [4]  # at least one chunk, even if larger
    assert sp.pending == 20
    store = MemoryStore()
    assert asyncio.run(Deliverer(sp, store, batch_lines=9).drain())
    assert store.calls == [8, 8, 4]
    assert store.lines == lines(20)


def test_chunks_as_text(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    assert sp.append_text("", 0) == 0
    sp.append_text("\n".join(lines(3)), 3)
    sp.append(lines(2, start=3))
    assert sp.pending == 5
    chunks = sp.peek_text(10)
    assert [(n, text.split("\n")) for _, n, text in chunks] == [(3, lines(3)),
                                                               (2, lines(2, start=3))]
    assert sp.peek_text(1, after_id=chunks[0][0]) == chunks[1:]
    assert sp.lines() == lines(5)


def test_spool_survives_reopen_mid_backlog_with_chunk_counts(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db", max_lines=10)
    sp.append(lines(6))
    sp.append(lines(6, start=6))  # 12 > 10: the two oldest lines go
    assert sp.pending == 10
    assert sp.lines() == lines(10, start=2)
    sp.close()
    again = Spool(tmp_path / "s.db", max_lines=10)
    assert again.pending == 10


def test_run_loop_delivers_new_lines_and_stops(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    store = MemoryStore()
    d = Deliverer(sp, store, flush_interval_s=0.05)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        sp.append(lines(3))
        d.wake()
        for _ in range(200):
            if not sp.pending:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert store.lines == lines(3)


class SlowStore(MemoryStore):
    """Counts how many writes are under way at once."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0
        self.release = asyncio.Event()

    async def write(self, lines: Sequence[str]) -> None:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await self._hold()
            await super().write(lines)
        finally:
            self.active -= 1

    async def _hold(self) -> None:
        await self.release.wait()


def test_run_keeps_two_batches_in_flight_and_one_after_a_failure(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    for i in range(6):
        sp.append(lines(5, start=5 * i))
    store = SlowStore()
    d = Deliverer(sp, store, batch_lines=5, flush_interval_s=0.01, base_backoff_s=0.01,
                  max_in_flight=2)

    async def scenario() -> tuple[int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        for _ in range(100):
            await asyncio.sleep(0.01)
        healthy_most = store.most
        store.fail_with = [StoreUnavailable("503")]
        store.most = 0
        store.release.set()
        for _ in range(300):
            if not sp.pending:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        return healthy_most, store.calls.count(5)

    healthy_most, calls = asyncio.run(scenario())
    assert healthy_most == 2  # never more than max_in_flight
    assert sp.pending == 0
    assert sorted(store.lines) == sorted(lines(30))  # each line once, none lost
    assert len(store.lines) == len(set(store.lines))
    assert calls == 7  # six batches plus the one that failed and was sent again


class OverlapStore(SlowStore):
    """Counts how many writes are under way at once; each takes a few turns of the loop."""

    async def _hold(self) -> None:
        for _ in range(3):
            await asyncio.sleep(0)


def test_drain_keeps_batches_in_flight_and_stops_at_a_failure(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    for i in range(9):
        sp.append(lines(5, start=5 * i))
    store = OverlapStore()
    store.fail_with = [StoreUnavailable("503")]
    d = Deliverer(sp, store, batch_lines=5, max_in_flight=3)
    assert not asyncio.run(d.drain())
    # three batches were under way: the first failed and stays, the other two are stored
    assert store.most == 3
    assert sorted(store.lines) == sorted(lines(10, start=5))
    assert sp.pending == 35 and d.stats.consecutive_failures == 1
    assert asyncio.run(d.drain())
    assert sp.pending == 0 and d.stats.consecutive_failures == 0
    assert sorted(store.lines) == sorted(lines(45))  # each line once, none lost
    sp.close()


class FirstSlowStore(MemoryStore):
    """Answers the first write only after four later ones were stored."""

    def __init__(self) -> None:
        super().__init__()
        self.later = asyncio.Event()
        self.stored_later = 0

    async def write(self, lines: Sequence[str]) -> None:
        if not self.calls:
            self.calls.append(len(lines))
            await self.later.wait()
            self.lines.extend(lines)
            return
        await super().write(lines)
        self.stored_later += 1
        if self.stored_later == 4:
            self.later.set()


def test_drain_sends_the_next_batch_as_soon_as_one_is_answered(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    for i in range(8):
        sp.append(lines(5, start=5 * i))
    store = FirstSlowStore()
    d = Deliverer(sp, store, batch_lines=5, max_in_flight=3)
    # the first batch is answered only after four others: they go past it, two at a time
    assert asyncio.run(asyncio.wait_for(d.drain(), 30))
    assert sorted(store.lines) == sorted(lines(40)) and sp.pending == 0
    sp.close()


def test_drain_ends_when_another_process_delivered_the_lines(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(5))
    other = Spool(tmp_path / "s.db")  # e.g. a backfill's delivery
    ((chunk_id, _),) = other.peek(10)
    other.ack(chunk_id, chunk_id)
    other.close()
    store = MemoryStore()
    assert sp.pending == 5  # as this spool counted them
    assert asyncio.run(Deliverer(sp, store).drain())
    assert sp.pending == 0 and store.lines == []
    sp.close()


def test_chunks_another_process_committed_are_delivered_and_never_skipped(
        tmp_path: Path) -> None:  # fmt: skip
    sp = Spool(tmp_path / "s.db")
    other = Spool(tmp_path / "s.db")  # a backfill appending to the daemon's spool
    sp.append(lines(2))
    other.append(lines(3, start=10))
    sp.append(lines(2, start=20))  # sees the other's commit
    other.append(lines(3, start=30))  # after this spool's last commit
    other.close()
    store = MemoryStore()
    assert asyncio.run(Deliverer(sp, store, batch_lines=2).drain())
    assert sorted(store.lines) == sorted(
        lines(2) + lines(3, start=10) + lines(2, start=20) + lines(3, start=30))
    assert sp.pending == 0 and sp.peek(100) == []
    sp.close()


# --- stored form and the body path -------------------------------------------------------


def test_chunks_are_stored_compressed_and_read_back_exactly(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    batch = [f"{ln},room=Küche\\ ☃" for ln in lines(500)]
    sp.append(batch)
    db = sqlite3.connect(tmp_path / "s.db")
    ((stored,),) = db.execute("SELECT lines FROM pending").fetchall()
    db.close()
    text = "\n".join(batch).encode("utf-8")
    assert isinstance(stored, bytes)
    assert len(stored) < len(text) / 5
    ((_, n, body),) = sp.peek_bodies(1000)
    assert (n, body) == (500, text)
    assert sp.lines() == batch


def test_plain_text_chunks_of_earlier_versions_are_delivered(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.close()
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("INSERT INTO pending(n, lines, queued_ns) VALUES (3, ?, 1)", ("\n".join(lines(3)),))
    db.commit()
    db.close()
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(2, start=3))
    assert sp.pending == 5
    assert sp.lines() == lines(5)
    store = BodyStore()
    assert asyncio.run(Deliverer(sp, store).drain())
    assert store.bodies == [("\n".join(lines(5)).encode(), 5)]
    assert store.lines == lines(5)


def test_a_damaged_chunk_is_named(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(3))
    sp.append(lines(3, start=3))
    sp.close()
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("UPDATE pending SET lines = ? WHERE id = 2", (b"\x04\x22\x4d\x18garbage",))
    db.commit()
    db.close()
    sp = Spool(tmp_path / "s.db")
    assert sp.peek(3) == [(1, lines(3))]
    with pytest.raises(DamagedChunk, match="spool chunk 2 cannot be read"):
        sp.peek_bodies(10)


def test_whole_chunks_go_as_one_body_and_large_ones_in_slices(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    for i in range(5):
        sp.append(lines(4, start=4 * i))
    sp.append(lines(20, start=20))  # larger than a batch
    store = BodyStore()
    assert asyncio.run(Deliverer(sp, store, batch_lines=9).drain())
    assert store.bodies == [
        ("\n".join(lines(8)).encode(), 8),
        ("\n".join(lines(8, start=8)).encode(), 8),
        ("\n".join(lines(4, start=16)).encode(), 4),
    ]
    assert store.calls == [8, 8, 4, 9, 9, 2]
    assert store.lines == lines(40)
    assert sp.pending == 0


def test_a_refused_body_is_split_to_find_the_bad_lines(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    batch = lines(9)
    sp.append(batch[:4])
    sp.append(batch[4:])
    store = BodyStore()
    store.bad = {batch[2], batch[7]}
    d = Deliverer(sp, store)
    assert asyncio.run(d.drain()) is True
    assert [body for body, _ in store.bodies] == ["\n".join(batch).encode()]
    assert [(x.line, x.status) for x in sp.dead_letters()] == [(batch[2], 400), (batch[7], 400)]
    assert set(store.lines) == set(batch) - store.bad
    assert (d.stats.delivered, d.stats.rejected, sp.pending) == (7, 2, 0)


def test_a_body_too_large_halves_the_batch(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s.db")
    sp.append(lines(10))
    store = BodyStore()
    store.max_batch = 3
    d = Deliverer(sp, store, batch_lines=10)
    assert asyncio.run(d.drain()) is True
    assert store.lines == lines(10)
    assert [n for _, n in store.bodies] == [10]
    assert d._batch <= 3
