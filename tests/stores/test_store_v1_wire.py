"""The InfluxDB 1.x store on the wire (httpx underneath): against loopback servers written on
raw sockets (answers a real InfluxDB never gives) and against a real influxd."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
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

from collector import __version__
from collector.errors import ConfigError, StoreRejected, StoreUnavailable
from collector.stores.base import StoreGarbled
from collector.stores.influx_v1 import InfluxV1Store
from collector.tls import no_tls
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
def test_a_connection_the_server_closed_while_idle_is_replaced(serve: Any, notice: bool) -> None:
    # closes after answering, without saying so; httpx finds the idle connection readable
    # (the server's FIN) and opens a new one instead
    server = serve(lambda r: Reply(close=True))

    async def scenario() -> int:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await write(store, LINES[:1], close=False)
        if notice:
            await asyncio.sleep(0.1)  # the event loop reads the server's FIN meanwhile
            await write(store, LINES[1:])
            return 0
        # Sent at once, the request races the server's close: httpx either sees the FIN
        # first and opens a new connection, or finds the connection reset under the
        # request, which is then an outage (the lines stay in the spool and go out again).
        try:
            await write(store, LINES[1:])
        except StoreUnavailable as err:
            assert "Connection reset by peer" in str(err) or "disconnected" in str(err)
            await write(store, LINES[1:])
            return 1
        return 0

    outages = run(scenario())
    assert outages in (0, 1)
    assert server.accepted == 2  # the first connection, then one new one
    assert stored(server) == LINES


def test_a_reused_connection_closed_before_the_answer_fails_that_write_as_an_outage(
        serve: Any) -> None:
    # the second request on the first connection finds it closed: the race of an idle close.
    # httpx does not send it again; the write fails as an outage (its lines stay in the
    # spool) and the next one goes out on a new connection.
    stored_so_far: list[int] = []
    server = serve(lambda r: Reply(parts=[], close=True) if r.conn == 1 and stored_so_far
                   else Reply())

    async def scenario() -> None:
        store = InfluxV1Store(server.url, "e", gzip=False)
        await write(store, LINES[:1], close=False)
        stored_so_far.append(1)
        with pytest.raises(StoreUnavailable) as info:
            await write(store, LINES[1:], close=False)
        assert not isinstance(info.value, StoreGarbled)
        assert str(info.value) == (f"InfluxDB at {server.url}: /write failed: "
                                   "RemoteProtocolError: Server disconnected without sending a "
                                   "response.")
        await write(store, LINES[1:])

    run(scenario())
    assert server.accepted == 2
    assert [r.conn for r in server.requests] == [1, 1, 2]
    assert stored(server) == LINES + LINES[1:]


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


def test_a_fresh_connection_closed_without_an_answer_is_not_retried(serve: Any) -> None:
    server = serve(lambda r: Reply(parts=[], close=True))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert not isinstance(info.value, StoreGarbled)
    assert str(info.value) == (f"InfluxDB at {server.url}: /write failed: RemoteProtocolError: "
                               "Server disconnected without sending a response.")
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
     "peer closed connection without sending complete message body (received 10 bytes, "
     "expected 100)"),
    (b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
     "peer closed connection without sending complete message body (incomplete chunked read)"),
    (b"ICY 200 OK\r\n\r\n", "illegal status line: bytearray(b'ICY 200 OK')"),
    (b"HTTP/1.1 20 OK\r\n\r\n", "illegal status line: bytearray(b'HTTP/1.1 20 OK')"),
    (b"HTTP/1.1 204 OK\r\nno colon here\r\n\r\n",
     "illegal header line: bytearray(b'no colon here')"),
    (b"HTTP/1.1 204 OK\r\nBad Name: x\r\n\r\n", "illegal header line: bytearray(b'Bad Name: x')"),
    (b"HTTP/1.1 204 OK\r\nX-Foo: a\x01b\rc\r\n\r\n",
     "illegal header line: bytearray(b'X-Foo: a\\x01b\\rc')"),
    (b"HTTP/1.1 400 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 400 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
     "conflicting Content-Length headers"),
    (b"HTTP/1.1 400 OK\r\nContent-Length: 99999999999\r\n\r\n",
     "peer closed connection without sending complete message body (received 0 bytes, "
     "expected 99999999999)"),
    (b"HTTP/1.1 400 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
     "illegal chunk header: bytearray(b'0x5\\r\\n')"),
    (b"HTTP/1.1 400 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     "Only Transfer-Encoding: chunked is supported"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
     "Received server _SWITCH_UPGRADE event without a pending proposal"),
    (b"HTTP/1.1 204 OK\r\nX-A: " + b"b" * 200_000 + b"\r\n\r\n", "Receive buffer too long"),
], ids=["body-cut", "chunk-cut", "not-http", "short-status", "no-colon", "space-in-name",
        "control", "negative-length", "two-lengths", "huge-length", "bad-chunk-size",
        "unknown-coding", "upgrade", "huge-header-section"])
def test_unreadable_answers_say_what_was_wrong(serve: Any, answer: bytes, what: str) -> None:
    server = serve(lambda r: Reply(parts=[answer], close=True))
    with pytest.raises(StoreGarbled) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert str(info.value) == f"InfluxDB at {server.url}: /write answered unreadably: {what}"
    assert "Traceback" not in str(info.value)


# --- no answer -----------------------------------------------------------------------------


def test_a_header_section_cut_short_by_the_close_is_an_outage(serve: Any) -> None:
    # httpx reads no answer in it: the write fails as an outage, as a close without an answer
    server = serve(lambda r: Reply(parts=[b"HTTP/1.1 204 No Co"], close=True))
    with pytest.raises(StoreUnavailable) as info:
        run(write(InfluxV1Store(server.url, "e", gzip=False)))
    assert not isinstance(info.value, StoreGarbled)
    assert str(info.value) == (f"InfluxDB at {server.url}: /write failed: RemoteProtocolError: "
                               "Server disconnected without sending a response.")


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
        assert store._http.is_closed

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


def _context(client: Any) -> ssl.SSLContext:
    """The SSL context of an httpx client's pool (no public accessor)."""
    context = client._transport._pool._ssl_context
    assert isinstance(context, ssl.SSLContext)
    return context


def test_verify_tls_false_checks_nothing_and_plain_http_loads_no_bundle() -> None:
    unchecked = _context(InfluxV1Store("https://a.test", "e", verify_tls=False)._http)
    assert unchecked.verify_mode == ssl.CERT_NONE and not unchecked.check_hostname
    assert _context(InfluxV1Store("http://c.test", "e")._http) is no_tls()


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
