"""No line blocks the spool: unreadable answers for one line, outages, backoff bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from collector.errors import StoreUnavailable
from collector.pipeline.delivery import Deliverer
from collector.pipeline.spool import Spool
from collector.stores.base import StoreGarbled
from collector.stores.influx_v1 import InfluxV1Store

GOOD = [f"power_w,device_id=dev{i} value={i}.5 {1_700_000_000_000_000_000 + i}"
        for i in range(9)]
POISON = "power_w,device_id=poison value=1.0 1700000000000000099"


class RawStore:
    """A loopback HTTP/1.1 server written on the socket, answering each ``POST /write`` by
    ``mode``: "poison" answers 400 with an X-Influxdb-Error header holding a NUL byte (which
    HTTP clients refuse to read) to a body with the poisoned line and 204 to the rest;
    "503" answers every write with 503; "hangup" closes the connection without an answer."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stored: list[str] = []
        self.writes = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += conn.recv(65536)
        self.writes += 1
        if self.mode == "hangup":
            return
        if self.mode == "503":
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
        elif b"poison" in body:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"X-Influxdb-Error: unable to parse 'poison\x00': invalid field\r\n"
                         b"Connection: close\r\n\r\n")
        else:
            self.stored += body.decode().split("\n")
            conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


@pytest.fixture
def spool(tmp_path: object) -> Iterator[Spool]:
    from pathlib import Path

    s = Spool(Path(str(tmp_path)) / "spool.sqlite3")
    yield s
    s.close()


def test_poisoned_line_is_dead_lettered_after_bounded_unreadable_answers(spool: Spool) -> None:
    server = RawStore("poison")
    lines = [*GOOD[:4], POISON, *GOOD[4:]]
    spool.append(lines)

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "energy", gzip=False)
        deliverer = Deliverer(spool, store, garbled_attempts=3)
        try:
            for _ in range(3):  # a broken proxy looks the same: retried whole at first
                with pytest.raises(StoreGarbled, match="unable to parse 'poison"):
                    await deliverer.deliver_batch()
                assert spool.pending == 10
                assert spool.dead_letters() == []
            assert await deliverer.deliver_batch() == 10
        finally:
            await store.aclose()

    try:
        asyncio.run(scenario())
    finally:
        server.close()
    dead = spool.dead_letters()
    assert [d.line for d in dead] == [POISON]
    assert dead[0].status == 0
    assert "X-Influxdb-Error: unable to parse 'poison\\x00': invalid field" in dead[0].error
    assert spool.pending == 0
    assert set(server.stored) == set(GOOD)
    assert POISON not in server.stored


@pytest.mark.parametrize("mode", ["503", "hangup", "refused"])
def test_outage_is_retried_forever_and_dead_letters_nothing(spool: Spool, mode: str) -> None:
    server = RawStore(mode)
    url = server.url
    if mode == "refused":
        server.close()  # nothing listens on the port any more
    spool.append([*GOOD, POISON])

    async def scenario() -> None:
        store = InfluxV1Store(url, "energy", gzip=False)
        deliverer = Deliverer(spool, store, garbled_attempts=3)
        try:
            for _ in range(10):
                with pytest.raises(StoreUnavailable) as info:
                    await deliverer.deliver_batch()
                assert not isinstance(info.value, StoreGarbled)
        finally:
            await store.aclose()

    try:
        asyncio.run(scenario())
    finally:
        server.close()
    assert spool.pending == 10
    assert spool.dead_letters() == []
    assert server.stored == []
    assert server.writes == (0 if mode == "refused" else 10)


def test_retry_after_is_capped_by_max_backoff(spool: Spool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "86400"})

    spool.append(GOOD)

    async def scenario() -> Deliverer:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        deliverer = Deliverer(spool, InfluxV1Store("http://influx.invalid", "e", client=client),
                              max_backoff_s=30.0)
        assert not await deliverer.drain()
        await client.aclose()
        return deliverer

    deliverer = asyncio.run(scenario())
    assert 25.0 < deliverer.stats.next_attempt - time.monotonic() <= 30.0
    assert spool.pending == 9


def test_later_batch_succeeding_keeps_the_backoff_of_an_earlier_failing_one(
    spool: Spool,
) -> None:
    spool.append([GOOD[0]])  # the batch that fails
    spool.append([GOOD[1]])  # a later one that succeeds while the first still fails

    async def scenario() -> Deliverer:
        later_sent = asyncio.Event()
        failed = asyncio.Event()
        stop = asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            if b"dev0" in request.content:  # fails once both batches are under way
                await asyncio.wait_for(later_sent.wait(), 20)
                failed.set()
                return httpx.Response(503)
            later_sent.set()
            await asyncio.wait_for(failed.wait(), 20)
            stop.set()
            return httpx.Response(204)

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        deliverer = Deliverer(
            spool, InfluxV1Store("http://influx.invalid", "e", client=client, gzip=False),
            batch_lines=1, base_backoff_s=100.0, max_backoff_s=100.0, flush_interval_s=0.0,
            max_in_flight=2,
        )
        await asyncio.wait_for(deliverer.run(stop), 30)
        await client.aclose()
        return deliverer

    deliverer = asyncio.run(scenario())
    assert spool.lines() == [GOOD[0]]
    assert deliverer.stats.delivered == 1
    assert deliverer.stats.consecutive_failures == 1
    assert deliverer.stats.next_attempt - time.monotonic() > 50.0
    assert deliverer.stats.last_error is not None
    assert "HTTP 503" in deliverer.stats.last_error
