"""The pipeline's spool, delivery and encoders keep every committed line exactly once in
the store: properties checked on the spool's range acknowledgements."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.errors import StoreUnavailable
from collector.lineprotocol import Encoder
from collector.pipeline.chunk import Chunk
from collector.pipeline.delivery import Deliverer
from collector.pipeline.spool import Spool
from collector.sources.fritzbox.parse import parse_devicelist
from tests.sources.fritzbox import fixture

T = datetime(2026, 11, 2, 12, tzinfo=UTC)
#: a chunk larger than most (8 MiB of text)
LARGE_BYTES = 8 * 1024 * 1024


def _ids(spool: Spool, limit: int = 1_000) -> list[int]:
    return [chunk_id for chunk_id, _, _ in spool.peek_bodies(limit)]


def _file_ids(spool: Spool) -> list[int]:
    return [chunk_id for chunk_id, _, _ in spool.peek_text(1_000_000)]


def test_range_ack_never_deletes_an_undelivered_chunk(tmp_path: Path) -> None:
    """A full spool: an append that trims the oldest chunk, then a delivery's ack. Later a
    large chunk lies between two small ones; a range ack deletes only chunks delivery was
    handed."""
    spool = Spool(tmp_path / "s.db", max_lines=4)
    try:
        for i in range(4):
            spool.append([f"m v={i}i {i}"])  # ids 1..4, full
        # the append drops chunk 1 for room, the ack removes chunk 2
        spool.run_in_transaction(lambda: spool._insert(b"m v=5i 5", 1), durable=True)
        spool.run_in_transaction(lambda: spool._delete(2, 2, ()), durable=False)
        assert _file_ids(spool) == [3, 4, 5]
        # chunk 3 first
        (first,) = spool.peek_bodies(1)
        assert first[0] == 3
        spool.ack(3, 3)
        spool.max_lines = 100
        spool.append(["m v=6i 6"])  # id 6
        big = "m,pad=" + "x" * (LARGE_BYTES + 10) + " v=7i 7"
        spool.append([big])  # id 7
        spool.append(["m v=8i 8"])  # id 8
        assert _file_ids(spool) == [4, 5, 6, 7, 8]
        batch = spool.peek_bodies(2)
        assert [chunk_id for chunk_id, _, _ in batch] == [4, 5]
        spool.ack(batch[0][0], batch[-1][0])
        batch = spool.peek_bodies(3)
        delivered = {chunk_id for chunk_id, _, _ in batch}
        spool.ack(batch[0][0], batch[-1][0])
        # every chunk the range ack removed had been handed to delivery
        assert 7 in delivered or 7 in _file_ids(spool)
    finally:
        spool.close()


class _Recording:
    """A store taking ``write_body``: what it was handed, batch by batch; the batches
    holding ``fail_on`` fail once with an outage."""

    name = "recording"

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.under_way = 0
        self.most_under_way = 0
        self.fail_on = fail_on

    async def write_body(self, body: bytes, n: int) -> None:
        lines = body.decode("utf-8").split("\n")
        assert len(lines) == n
        self.under_way += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if self.fail_on is not None and self.fail_on in lines:
                self.fail_on = None
                raise StoreUnavailable("away for a moment")
            self.batches.append(lines)
        finally:
            self.under_way -= 1

    async def write(self, lines: Sequence[str]) -> None:
        await self.write_body("\n".join(lines).encode(), len(lines))

    async def check(self) -> str:
        return "ok"

    async def aclose(self) -> None:
        return None


def test_drain_delivers_every_line_once_with_batches_under_way(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    lines = [f"m,device_id=d{i % 7} value={i}.0 {1_700_000_000_000_000_000 + i}"
             for i in range(40)]
    for i in range(0, 40, 2):
        spool.append(lines[i:i + 2])
    store = _Recording()
    deliverer = Deliverer(spool, store, batch_lines=4, max_in_flight=3)
    try:
        assert asyncio.run(deliverer.drain()) is True
        delivered = [line for batch in store.batches for line in batch]
        assert sorted(delivered) == sorted(lines)  # each line once, none twice
        assert store.most_under_way == 3
        assert spool.pending == 0 and _file_ids(spool) == []
        assert spool.status().delivered_total == 40
    finally:
        spool.close()


def test_a_failed_batch_in_a_drain_keeps_its_lines_and_loses_no_other(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    lines = [f"m v={i}.0 {1_700_000_000_000_000_000 + i}" for i in range(24)]
    for i in range(0, 24, 2):
        spool.append(lines[i:i + 2])
    store = _Recording(fail_on=lines[5])
    deliverer = Deliverer(spool, store, batch_lines=4, max_in_flight=3)
    try:
        assert asyncio.run(deliverer.drain()) is False
        delivered = [line for batch in store.batches for line in batch]
        assert len(delivered) == len(set(delivered))
        assert set(spool.lines()) | set(delivered) == set(lines)
        assert lines[5] in spool.lines()
        assert deliverer.stats.failures == 1
        # the next drain delivers what is left, nothing twice
        deliverer.stats.next_attempt = 0.0
        assert asyncio.run(deliverer.drain()) is True
        delivered = [line for batch in store.batches for line in batch]
        assert sorted(delivered) == sorted(lines)
        assert spool.pending == 0
    finally:
        spool.close()


_POWER = re.compile(rb"<power>\d+</power>")


def _with_power(xml: bytes, watts_mw: Sequence[int]) -> bytes:
    values = iter(watts_mw)
    return _POWER.sub(lambda _: b"<power>%d</power>" % next(values), xml)


@pytest.mark.parametrize("powers", [
    [(12345, 0, 12345), (5000, 0, 5000), (12345, 0, 12345), (12345, 0, 12345),
     (5000, 0, 5000), (5000, 7, 5007), (5000, 7, 5007), (12345, 0, 12345)],
])
def test_meters_that_change_back_and_forth_give_the_lines_of_reading_afresh(
        powers: list[tuple[int, int, int]]) -> None:  # fmt: skip
    """Two plugs and their group, whose power alone changes from poll to poll (back to an
    earlier value too): every poll's lines are those of its answer read afresh, at its
    time, one chunk per poll as the app makes them."""
    xml = fixture("devicelist", "group_powermeter")
    encoder = Encoder()
    for minute, watts in enumerate(powers):
        at = T + timedelta(minutes=minute)
        answer = _with_power(xml, watts)
        dl = parse_devicelist(answer, site="meters", time=at)
        chunk = Chunk(encoder)
        chunk.add(dl.readings)
        afresh = parse_devicelist(answer, site=f"afresh-{minute}", time=at)
        expected = Encoder().encode_many([r._replace(site="meters")
                                          for r in afresh.readings])
        assert chunk.body().decode("utf-8").split("\n") == expected
        assert dl.devices == afresh.devices
        power_lines = [line for line in expected if line.startswith("power_w")]
        assert [float(line.split("value=")[1].split(" ")[0]) for line in power_lines] == [
            w / 1000 for w in watts]
        stamp = str(int(at.timestamp()) * 1_000_000_000)
        assert all(line.endswith(stamp) for line in power_lines)


def test_dropping_pending_lines_under_a_delivery_loses_no_later_chunk(tmp_path: Path) -> None:
    """``collector spool drop`` while a batch is under way: the batch's late ack removes
    nothing, a chunk committed since is handed to delivery and counted."""
    spool = Spool(tmp_path / "s.db")
    try:
        spool.append(["m v=1i 1"])
        spool.append(["m v=2i 2", "m v=2i 3"])
        under_way = spool.peek_bodies(10)
        assert spool.drop_pending() == 3
        spool.append(["m v=3i 4"])
        assert spool.ack(under_way[0][0], under_way[-1][0]) == 0
        assert spool.pending == 1
        assert spool.peek_bodies(10) == [(3, 1, b"m v=3i 4")]
        assert spool.status().dropped_total == 3
    finally:
        spool.close()


def test_dead_letters_retried_are_delivered_from_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    try:
        spool.append(["m v=1i 1", "bad line"])
        spool.ack(1, 1, rejected=[("bad line", 400, "unable to parse")])
        spool.append(["m v=2i 2"])
        assert spool.retry_dead_letters() == 1
        assert spool.pending == 2
        assert spool.peek_bodies(10) == [(2, 1, b"m v=2i 2"), (3, 1, b"bad line")]
        spool.ack(2, 3)
        assert spool.pending == 0 and _file_ids(spool) == []
        assert spool.dead_letters() == []
    finally:
        spool.close()


def test_a_full_spool_appended_and_acked_together_hands_out_the_oldest_chunk(
        tmp_path: Path) -> None:  # fmt: skip
    """Through the spool's async API: a job's append to a full spool (trimming its oldest
    chunk) and a delivery's ack waiting together on the spool's thread. Delivery must still
    be handed the oldest pending chunk."""
    import threading

    spool = Spool(tmp_path / "s.db", max_lines=4)

    async def scenario() -> list[int]:
        for i in range(4):
            await spool.append_text_async(f"m v={i}i {i}", 1)  # ids 1..4, full
        entered, gate = threading.Event(), threading.Event()

        def hold() -> None:
            entered.set()
            gate.wait(10)

        holding = asyncio.ensure_future(spool._writer.run(hold))
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
        # the spool's thread is busy: these two wait for it
        append = asyncio.ensure_future(spool.append_text_async(b"m v=5i 5", 1))
        ack = asyncio.ensure_future(spool.ack_async(2, 2))
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(holding, append, ack)
        # delivery takes the two oldest chunks (from the file) and acknowledges them
        batch = spool.peek_bodies(2)
        assert [chunk_id for chunk_id, _, _ in batch] == [3, 4]
        await spool.ack_async(batch[0][0], batch[-1][0])
        await spool.append_text_async(b"m v=6i 6", 1)
        return [chunk_id for chunk_id, _, _ in spool.peek_bodies(100)]

    try:
        handed = asyncio.run(scenario())
        assert _file_ids(spool) == [5, 6]
        assert handed == [5, 6]  # chunk 5 is pending and must not be skipped
    finally:
        spool.close()
