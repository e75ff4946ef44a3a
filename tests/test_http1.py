"""The InfluxDB 1.x store's own HTTP/1.1 client: against loopback servers written on raw
sockets (answers a real InfluxDB never gives) and against a real influxd."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import logging
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector import __version__
from collector.errors import ConfigError, StoreRejected, StoreUnavailable
from collector.stores.base import StoreGarbled
from collector.stores.http1 import Http1Client, Unreadable, _read_answer, escape, parse_head
from collector.stores.influx_v1 import InfluxV1Store
from tests.influxd import Influxd

LINES = [f"power_w,device_id=dev{i},site=home value={i}.25 {1_700_000_000_000_000_000 + i}"
         for i in range(3)]
OK = b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.8.10\r\n\r\n"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def write(store: InfluxV1Store, lines: list[str] = LINES, *, close: bool = True) -> None:
    try:
        await store.write(lines)
    finally:
        if close:
            await store.aclose()


# --- a loopback server on raw sockets -------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    conn: int  # which accepted connection, from 1


@dataclass
class Reply:
    parts: list[bytes] = field(default_factory=lambda: [OK])  # sent as separate segments
    close: bool = False  # close the connection afterwards (without saying so)
    hang: bool = False  # never answer; wait for the client to go away
    delay: float = 0.0  # before answering, so that requests overlap


class RawServer:
    """Answers every request on a loopback socket with what ``reply`` says, counting the
    connections it accepted, how many were open at once and how many the client closed."""

    def __init__(self, reply: Callable[[Request], Reply] = lambda r: Reply(), *,
                 tls: ssl.SSLContext | None = None, family: int = socket.AF_INET) -> None:
        self.reply = reply
        self.tls = tls
        self.sock = socket.socket(family)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        host = "[::1]" if family == socket.AF_INET6 else "127.0.0.1"
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.requests: list[Request] = []
        self.accepted = self.open = self.max_open = self.client_closed = 0
        self.got_request = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.max_open = max(self.max_open, self.open)
                n = self.accepted
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, raw: socket.socket, n: int) -> None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            with raw, (self.tls.wrap_socket(raw, server_side=True) if self.tls else raw) as conn:
                self._requests(conn, n)
        except OSError:  # ssl.SSLError too: a client refusing the certificate
            pass
        finally:
            with self._lock:
                self.open -= 1

    def _requests(self, conn: socket.socket, n: int) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                if not (data := conn.recv(65536)):
                    with self._lock:
                        self.client_closed += 1
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            first, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines)}
            length = int(headers.get("content-length", "0"))
            while len(buf) < length:
                buf += conn.recv(65536)
            body, buf = buf[:length], buf[length:]
            method, target, _ = first.split(" ")
            request = Request(method, target, headers, body, n)
            self.requests.append(request)
            self.got_request.set()
            reply = self.reply(request)
            if reply.hang:
                continue  # the next recv sees the client go
            time.sleep(reply.delay)
            for i, part in enumerate(reply.parts):
                if i:
                    time.sleep(0.02)  # its own TCP segment
                conn.sendall(part)
            if reply.close:
                return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(reply: Callable[[Request], Reply] = lambda r: Reply(), **kw: Any) -> RawServer:
        servers.append(RawServer(reply, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def stored(server: RawServer) -> list[str]:
    return [line for r in server.requests if r.method == "POST"
            for line in (gzip.decompress(r.body) if r.headers.get("content-encoding") == "gzip"
                         else r.body).decode().split("\n") if line]


# --- the request -------------------------------------------------------------------------


def test_the_request_names_host_base_path_client_and_length(serve: Any) -> None:
    server = serve()
    url = server.url.replace("http://", "http://me:pw-in-url@") + "/influx/"
    store = InfluxV1Store(url, "energy", retention_policy="autogen", username="me",
                          password="s3cret")

    async def scenario() -> str:
        await write(store, close=False)
        return await _check_then_close(store)

    assert run(scenario()) == (
        f"InfluxDB 1.8.10 at {server.url}/influx: database 'energy', retention policy "
        "'autogen' writable")
    written, ping, probe = server.requests
    assert [r.conn for r in server.requests] == [1, 1, 1]
    assert written.target == "/influx/write?db=energy&precision=ns&rp=autogen"
    assert written.headers["host"] == f"127.0.0.1:{server.port}"
    assert written.headers["user-agent"] == f"collector/{__version__}"
    assert written.headers["accept-encoding"] == "identity"
    assert written.headers["authorization"] == "Basic bWU6czNjcmV0"  # me:s3cret
    assert written.headers["content-encoding"] == "gzip"
    assert written.headers["content-length"] == str(len(written.body))
    assert stored(server) == LINES
    assert (ping.method, ping.target, ping.body) == ("GET", "/influx/ping", b"")
    assert "content-length" not in ping.headers
    assert (probe.method, probe.headers["content-length"], probe.body) == ("POST", "0", b"")
    assert all("pw-in-url" not in r.target and "s3cret" not in r.target
               for r in server.requests)


async def _check_then_close(store: InfluxV1Store) -> str:
    try:
        return await store.check()
    finally:
        await store.aclose()


def test_credentials_in_the_url_travel_as_basic_auth_only(serve: Any) -> None:
    server = serve()
    run(write(InfluxV1Store(server.url.replace("//", "//me:p%40ss@"), "e", gzip=False)))
    [req] = server.requests
    assert req.headers["authorization"] == "Basic bWU6cEBzcw=="  # me:p@ss
    assert req.headers["host"] == f"127.0.0.1:{server.port}"
    assert "p@ss" not in req.target and "p%40ss" not in req.target


def test_an_ipv6_literal_is_bracketed_in_the_host_field(serve: Any) -> None:
    try:
        server = serve(family=socket.AF_INET6)
    except OSError as err:
        pytest.skip(f"no IPv6 loopback here: {err}")
    run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert server.requests[0].headers["host"] == f"[::1]:{server.port}"
    assert stored(server) == LINES


@pytest.mark.parametrize("url", ["ftp://influx.test/", "influx.test:8086", "http://:8086",
                                 "http://me:secret@influx.test:99999"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="needs http:// or https://") as info:
        InfluxV1Store(url, "e")
    assert "secret" not in str(info.value)


# --- keep-alive ----------------------------------------------------------------------------


def test_many_writes_share_one_connection(serve: Any) -> None:
    server = serve()

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        for i in range(20):
            await write(store, [f"m v={i}.0 {i}"], close=False)
        await store.aclose()

    run(scenario())
    assert server.accepted == 1
    assert stored(server) == [f"m v={i}.0 {i}" for i in range(20)]


@pytest.mark.parametrize("notice", [True, False], ids=["noticed-while-idle", "found-on-use"])
def test_a_connection_the_server_closed_while_idle_is_replaced(
        serve: Any, notice: bool, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(lambda r: Reply(close=True))  # closes after answering, without saying so

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await write(store, LINES[:1], close=False)
        if notice:
            await asyncio.sleep(0.1)  # the event loop reads the server's FIN meanwhile
        await write(store, LINES[1:])

    with caplog.at_level(logging.DEBUG, logger="collector.stores.http1"):
        run(scenario())
    assert server.accepted == 2
    assert stored(server) == LINES
    retried = [r.getMessage() for r in caplog.records if "trying a new one" in r.message]
    assert retried == ([] if notice else [
        f"127.0.0.1:{server.port} closed a reused connection before answering; trying a new "
        "one"])


def test_a_reused_connection_closed_before_the_answer_is_retried_once_on_a_new_one(
        serve: Any) -> None:
    # the second request on the first connection finds it closed: the race of an idle close
    stored_so_far: list[int] = []
    server = serve(lambda r: Reply(parts=[], close=True) if r.conn == 1 and stored_so_far
                   else Reply())

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await write(store, LINES[:1], close=False)
        stored_so_far.append(1)
        await write(store, LINES[1:])

    run(scenario())
    assert server.accepted == 2
    assert [r.conn for r in server.requests] == [1, 1, 2]
    assert stored(server)[-2:] == LINES[1:]


def test_a_408_on_a_reused_connection_is_retried_on_a_new_one(serve: Any) -> None:
    # the server's answer to the first write, then its notice that the idle time is up
    gave_up = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server = serve(lambda r: Reply(parts=[OK + gave_up], close=True) if r.conn == 1
                   else Reply())

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await write(store, LINES[:1], close=False)
        await asyncio.sleep(0.1)  # the notice and the close arrive while the connection idles
        await write(store, LINES[1:])

    run(scenario())
    assert server.accepted == 2
    assert stored(server) == LINES


def test_a_408_on_a_fresh_connection_is_an_outage(serve: Any) -> None:
    server = serve(lambda r: Reply(parts=[b"HTTP/1.1 408 Request Timeout\r\n\r\n"],
                                   close=True))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value) == f"InfluxDB at {server.url} answered HTTP 408"
    assert len(server.requests) == 1


def test_a_retry_that_fails_again_is_not_retried_further(serve: Any) -> None:
    server = serve(lambda r: Reply() if len(server.requests) == 1 else Reply(parts=[],
                                                                             close=True))

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await write(store, LINES[:1], close=False)
        await write(store, LINES[1:])

    with pytest.raises(StoreUnavailable) as info:
        run(scenario())
    assert str(info.value) == (f"InfluxDB at {server.url}: /write failed: Disconnected: the "
                               "server closed the connection without answering")
    assert len(server.requests) == 3 and server.accepted == 2


def test_a_fresh_connection_closed_without_an_answer_is_not_retried(serve: Any) -> None:
    server = serve(lambda r: Reply(parts=[], close=True))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert not isinstance(info.value, StoreGarbled)
    assert str(info.value).endswith("/write failed: Disconnected: the server closed the "
                                    "connection without answering")
    assert len(server.requests) == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.0 204 No Content\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: Keep-Alive, Close\r\n\r\n",
], ids=["http-1.0", "connection-close", "close-among-tokens"])
def test_an_answer_that_ends_the_connection_is_not_reused(serve: Any, answer: bytes) -> None:
    server = serve(lambda r: Reply(parts=[answer]))  # the server itself keeps it open

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        for line in LINES:
            await write(store, [line], close=False)
        assert store._http is not None and store._http._idle == []
        await store.aclose()

    run(scenario())
    assert server.accepted == 3
    assert stored(server) == LINES


def test_concurrent_writes_never_open_more_than_max_connections(serve: Any) -> None:
    server = serve(lambda r: Reply(delay=0.05))

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await asyncio.gather(*(write(store, [f"m v={i}.0 {i}"], close=False)
                               for i in range(12)))
        await store.aclose()

    run(scenario())
    assert server.max_open == 4 and server.accepted == 4
    assert sorted(stored(server)) == sorted(f"m v={i}.0 {i}" for i in range(12))


def test_the_client_limit_is_its_max_connections(serve: Any) -> None:
    server = serve(lambda r: Reply(delay=0.05))

    async def scenario() -> list[int]:
        client = Http1Client(server.url, timeout=10, max_connections=2)
        answers = await asyncio.gather(*(client.request("GET", "/ping") for _ in range(6)))
        await client.aclose()
        return [a.status for a in answers]

    assert run(scenario()) == [204] * 6
    assert server.max_open == 2 and server.accepted == 2


# --- answers -------------------------------------------------------------------------------


def test_a_chunked_error_answer_is_read_with_its_trailers(serve: Any) -> None:
    error = b'{"error":"partial write: field type conflict dropped=1"}'
    answer = [b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: application/json\r\n\r\n",
              b"%x;ext=1\r\n%s\r\n" % (20, error[:20]),
              b"%X\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (len(error) - 20, error[20:])]
    server = serve(lambda r: Reply(parts=answer) if len(server.requests) == 1 else Reply())

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        with pytest.raises(StoreRejected) as info:
            await write(store, LINES, close=False)
        assert str(info.value) == "partial write: field type conflict dropped=1"
        assert info.value.status == 400
        await write(store, LINES[:1])  # the same connection, read to its end

    run(scenario())
    assert server.accepted == 1 and len(server.requests) == 2


def test_interim_answers_are_skipped_and_headers_may_arrive_in_pieces(serve: Any) -> None:
    parts = [b"HTTP/1.1 100 Continue\r\n\r\nHTT", b"P/1.1 503 Service Unav", b"ailable\r\nRetr",
             b"y-After: 7\r\nContent-Le", b"ngth: 13\r\n", b"\r\n", b"engine", b" closed"]
    server = serve(lambda r: Reply(parts=parts))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value) == f"InfluxDB at {server.url} answered HTTP 503: engine closed"
    assert info.value.retry_after == 7.0


def test_a_body_without_length_runs_to_the_close(serve: Any) -> None:
    server = serve(lambda r: Reply(parts=[b"HTTP/1.1 500 Oops\r\n\r\n", b"shard write ",
                                          b"timeout"], close=True))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value) == f"InfluxDB at {server.url} answered HTTP 500: shard write timeout"


def test_a_nul_in_the_error_header_is_garbled_and_shown_escaped(serve: Any) -> None:
    server = serve(lambda r: Reply(parts=[
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
        b"X-Influxdb-Error: unable to parse 'poison\x00': invalid field\r\n\r\n"]))
    with pytest.raises(StoreGarbled) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value) == (
        f"InfluxDB at {server.url}: /write answered with an unreadable error header "
        "(X-Influxdb-Error: unable to parse 'poison\\x00': invalid field)")


@pytest.mark.parametrize(("answer", "what"), [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n\r\n0123456789",
     "body cut short after 10 of 100 bytes"),
    (b"HTTP/1.1 204 No Co", 'answer cut short in its header section "HTTP/1.1 204 No Co"'),
    (b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
     "chunked body cut short in a chunk"),
    (b"ICY 200 OK\r\n\r\n", 'malformed status line "ICY 200 OK"'),
    (b"HTTP/1.1 20 OK\r\n\r\n", 'malformed status line "HTTP/1.1 20 OK"'),
    (b"HTTP/1.1 204 OK\r\nno colon here\r\n\r\n", 'malformed header line "no colon here"'),
    (b"HTTP/1.1 204 OK\r\nBad Name: x\r\n\r\n", 'malformed header line "Bad Name: x"'),
    (b"HTTP/1.1 204 OK\r\nX-Foo: a\x01b\rc\r\n\r\n",
     "a control character in a header value (X-Foo: a\\x01b\\rc)"),
    (b"HTTP/1.1 400 OK\r\nContent-Length: -1\r\n\r\n", "bad length (Content-Length: -1)"),
    (b"HTTP/1.1 400 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
     "bad length (Content-Length: 3, 4)"),
    (b"HTTP/1.1 400 OK\r\nContent-Length: 99999999999\r\n\r\n",
     "a body larger than 16777216 bytes (Content-Length: 99999999999)"),
    (b"HTTP/1.1 400 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
     'bad chunk size "0x5"'),
    (b"HTTP/1.1 400 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     "unsupported transfer coding (Transfer-Encoding: gzip)"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "unexpected 101 Switching Protocols"),
    (b"HTTP/1.1 204 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", "more than 100 header lines"),
    (b"HTTP/1.1 204 OK\r\nX-A: " + b"b" * 70_000 + b"\r\n\r\n",
     "a header line longer than 65536 bytes"),
], ids=["body-cut", "head-cut", "chunk-cut", "not-http", "short-status", "no-colon",
        "space-in-name", "control", "negative-length", "two-lengths", "huge-length",
        "bad-chunk-size", "unknown-coding", "upgrade", "too-many-headers", "long-line"])
def test_unreadable_answers_say_what_was_wrong(serve: Any, answer: bytes, what: str) -> None:
    server = serve(lambda r: Reply(parts=[answer], close=True))
    with pytest.raises(StoreGarbled) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value) == f"InfluxDB at {server.url}: /write answered unreadably: {what}"
    assert "Traceback" not in str(info.value)


# --- no answer -----------------------------------------------------------------------------


def test_a_server_that_never_answers_times_out(serve: Any) -> None:
    server = serve(lambda r: Reply(hang=True))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False, timeout=0.3)))
    assert str(info.value) == f"InfluxDB at {server.url}: /write timed out"
    assert not isinstance(info.value, StoreGarbled)


def test_a_refused_connection_fails_naming_the_cause(serve: Any) -> None:
    server = serve()
    server.close()
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value).startswith(f"InfluxDB at {server.url}: /write failed: ConnectError: ")
    assert "Connect call failed" in str(info.value) or "refused" in str(info.value)
    assert info.value.retry_after is None


def test_an_unknown_host_fails_naming_the_cause() -> None:
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store("http://influx.invalid:8086", "e", gzip=False, timeout=5)))
    assert str(info.value).startswith(
        "InfluxDB at http://influx.invalid:8086: /write failed: ConnectError: ")


def test_a_cancelled_write_closes_its_connection(serve: Any) -> None:
    server = serve(lambda r: Reply(hang=True) if r.conn == 1 else Reply())

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        task = asyncio.create_task(write(store, close=False))
        assert await asyncio.to_thread(server.got_request.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert store._http is not None and store._http._idle == []
        for _ in range(100):  # the server thread sees the connection go
            if server.client_closed:
                break
            await asyncio.sleep(0.02)
        await write(store)  # on a new connection

    run(scenario())
    assert server.client_closed >= 1
    assert [r.conn for r in server.requests] == [1, 2]


def test_closing_the_store_mid_write_closes_that_connection_when_it_is_done(
        serve: Any) -> None:
    server = serve(lambda r: Reply(delay=0.2))

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        task = asyncio.create_task(write(store, close=False))
        assert await asyncio.to_thread(server.got_request.wait, 5)
        await store.aclose()
        await task  # the answer is still read
        assert store._http is not None and store._http._idle == []

    run(scenario())
    for _ in range(100):
        if server.client_closed:
            break
        time.sleep(0.02)
    assert server.client_closed == 1
    assert stored(server) == LINES


def test_a_store_used_in_a_second_event_loop_opens_new_connections(serve: Any) -> None:
    server = serve()
    store = InfluxV1Store(server.url, "e", gzip=False)
    run(write(store, LINES[:1], close=False))
    run(write(store, LINES[1:]))
    with warnings.catch_warnings():  # the first loop's transport, closed with the loop
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert server.accepted == 2
    assert stored(server) == LINES
    for _ in range(100):
        if server.client_closed == 2:
            break
        time.sleep(0.02)
    assert server.client_closed == 2  # the first connection ended when it was dropped


# --- TLS -----------------------------------------------------------------------------------


def test_https_checks_the_certificate_unless_told_not_to(
        serve: Any, self_signed: tuple[Path, Path]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    server = serve(tls=context)
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value).startswith(f"InfluxDB at {server.url}: /write failed: ConnectError: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert server.requests == []

    async def twice(store: InfluxV1Store) -> None:
        await write(store, LINES[:1], close=False)
        await write(store, LINES[1:])

    run(twice(InfluxV1Store(server.url, "e", gzip=False, verify_tls=False)))
    run(write(InfluxV1Store(server.url, "e", gzip=False, ca_file=str(self_signed[0]))))
    assert stored(server) == LINES + LINES
    assert [r.conn for r in server.requests] == [2, 2, 3]  # kept alive over TLS too


def test_verify_tls_false_shares_one_unchecking_context() -> None:
    a = InfluxV1Store("https://a.test", "e", verify_tls=False)._http
    b = InfluxV1Store("https://b.test:8443/influx", "e", verify_tls=False)._http
    plain = InfluxV1Store("http://c.test", "e")._http
    assert a is not None and b is not None and plain is not None
    assert a.ssl_context is b.ssl_context
    assert a.ssl_context is not None and a.ssl_context.verify_mode == ssl.CERT_NONE
    assert not a.ssl_context.check_hostname
    assert (b.port, b.base_path, a.port, plain.port) == (8443, "/influx", 443, 80)
    assert plain.ssl_context is None


# --- the real server -----------------------------------------------------------------------


class CountingProxy:
    """Forwards loopback connections to ``upstream``, counting them; ``drop()`` closes every
    connection it carries, as a server closing idle connections does."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.accepted += 1
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        src.close()  # the other pump closes dst

    def drop(self) -> None:
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.drop()
        self.sock.close()


@pytest.fixture
def proxy(influxd: Influxd) -> Iterator[CountingProxy]:
    p = CountingProxy(int(influxd.url.rsplit(":", 1)[1]))
    yield p
    p.close()


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_writes_to_influxd_are_stored_over_one_connection(
        influxd: Influxd, influx_db: str, proxy: CountingProxy, compress: bool) -> None:
    async def scenario() -> str:
        store = InfluxV1Store(proxy.url, influx_db, gzip=compress)
        for i in range(50):
            t = 1_700_000_000_000_000_000 + i * 60_000_000_000
            await write(store, [f"power_w,device_id=plug,site=home value={i}.5 {t}",
                                f"energy_wh,device_id=plug,site=home value={i * 10}.0 {t}"],
                        close=False)
        text = await store.check()
        await store.aclose()
        return text

    assert run(scenario()).endswith(f": database '{influx_db}' writable")
    assert proxy.accepted == 1
    rows = influxd.rows("SELECT value FROM power_w", influx_db)
    assert [(r["time"], r["value"]) for r in rows] == [
        (1_700_000_000_000_000_000 + i * 60_000_000_000, i + 0.5) for i in range(50)]
    energy = influxd.rows("SELECT value FROM energy_wh", influx_db)
    assert [r["value"] for r in energy] == [float(i * 10) for i in range(50)]


@pytest.mark.parametrize("notice", [True, False], ids=["noticed-while-idle", "found-on-use"])
def test_influxd_connections_dropped_while_idle_are_replaced(
        influxd: Influxd, influx_db: str, proxy: CountingProxy, notice: bool) -> None:
    async def scenario() -> None:
        store = InfluxV1Store(proxy.url, influx_db)
        await write(store, ["m,k=a value=1.0 1000"], close=False)
        proxy.drop()
        if notice:
            await asyncio.sleep(0.1)
        await write(store, ["m,k=a value=2.0 2000"])

    run(scenario())
    assert proxy.accepted == 2
    rows = influxd.rows("SELECT value FROM m", influx_db)
    assert [(r["time"], r["value"]) for r in rows] == [(1000, 1.0), (2000, 2.0)]


def test_influxd_errors_keep_their_messages(influxd: Influxd, influx_db: str) -> None:
    async def scenario() -> None:
        store = InfluxV1Store(influxd.url, influx_db)
        await write(store, ["m value=1.0 1"], close=False)
        await write(store, ['m value="text" 2'])

    with pytest.raises(StoreRejected) as info:
        run(scenario())
    assert "field type conflict" in str(info.value)
    assert info.value.status == 400


# --- the header parser ---------------------------------------------------------------------

_NAMES = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
                 min_size=1, max_size=20)
_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip)
_CONTROLS = st.sampled_from([chr(c) for c in (*range(0x09), *range(0x0B, 0x0D),
                                              *range(0x0E, 0x20), 0x7F)])


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=20), st.integers(100, 599))
def test_parse_head_reads_every_field_in_any_case(fields: list[tuple[str, str]],
                                                  status: int) -> None:
    head = (f"HTTP/1.1 {status} Some Reason\r\n"
            + "".join(f"{n}:  {v}\t\r\n" for n, v in fields) + "\r\n").encode()
    http11, got_status, headers = parse_head(head)
    assert http11 and got_status == status
    for name in {n.lower() for n, _ in fields}:
        expected = ", ".join(v for n, v in fields if n.lower() == name)
        assert headers[name.upper()] == headers.get(name) == expected
    assert len(headers) == len({n.lower() for n, _ in fields})


@given(_NAMES, _VALUES, _CONTROLS, _VALUES)
def test_parse_head_refuses_control_characters_and_shows_them_escaped(
        name: str, before: str, control: str, after: str) -> None:
    value = f"{before}{control}{after}".strip(" \t")
    head = f"HTTP/1.1 400 Bad\r\n{name}: {before}{control}{after}\r\n\r\n".encode()
    with pytest.raises(Unreadable) as info:
        parse_head(head)
    assert info.value.header == name
    assert info.value.value == escape(value)
    shown = repr(control)[1:-1]
    assert shown in info.value.value and control not in info.value.value


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.booleans(),
       st.lists(st.tuples(_NAMES, _VALUES), max_size=3))
def test_a_chunked_body_is_the_chunks_joined(chunks: list[bytes], extensions: bool,
                                             trailers: list[tuple[str, str]]) -> None:
    ext = b";name=value" if extensions else b""
    wire = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks)
            + b"0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in trailers).encode() + b"\r\n"
            + b"HTTP/1.1 204")  # the next answer on the connection stays unread

    async def read() -> tuple[Any, bool, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(wire)
        reader.feed_eof()
        head = await reader.readuntil(b"\r\n\r\n")
        answer, keep = await _read_answer(reader, "GET", head)
        return answer, keep, await reader.read()

    answer, keep, rest = run(read())
    assert (answer.status, answer.body, keep, rest) == (200, b"".join(chunks), True,
                                                        b"HTTP/1.1 204")


def test_escape_shows_control_characters_as_repr_does() -> None:
    assert escape("a\x00b\tc\x7fd\x1b") == "a\\x00b\\tc\\x7fd\\x1b"
    assert escape(b"caf\xc3\xa9 \xff") == "caf\u00c3\u00a9 \u00ff"  # not UTF-8: Latin-1
    assert escape(b"caf\xc3\xa9") == "caf\u00e9"
    assert escape("x" * 600) == "x" * 500 + "..."
