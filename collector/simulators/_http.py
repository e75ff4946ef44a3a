"""A small threaded HTTP server base for the device simulators.

Each simulator is a plain function ``Request -> Response`` served by ``SimServer`` on loopback
in a background thread. Port 0 picks a free port. A ``Faults`` object, shared by all servers of
one simulator, injects latency, failures, truncated bodies and a rate limit so that clients
can be tested against the bad days of a real device.
"""

from __future__ import annotations

import math
import ssl
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlsplit

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        """Query parameters merged with an urlencoded POST body (the body wins)."""
        merged = dict(self.query)
        if self.body and "urlencoded" in self.headers.get("content-type", "urlencoded"):
            merged.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return merged


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"))

    @classmethod
    def xml(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), "text/xml; charset=utf-8")


App = Callable[[Request], Response]


@dataclass(slots=True)
class _Shot:
    remaining: int
    status: int
    path: str | None


class Faults:
    """Injectable misbehaviour, applied to the next requests of any server sharing it.

    ``latency_s`` delays every answer; ``rate_limit`` (requests per second of the simulator's
    clock) answers 503 with Retry-After beyond it; ``fail_next`` and ``malformed_next`` affect
    the next n requests (optionally only those whose path starts with ``path``);
    ``expire_sessions`` ends every session of the simulator, ``end_sessions`` every session
    (and digest nonce) before each request, so that none can be used; ``limited_until`` (a
    time of the simulator's clock) answers every request 429 until then, with a Retry-After
    counting down to it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_s: float = 0.0
        self.rate_limit: float | None = None
        self.limited_until: float | None = None
        self.end_sessions = False
        self._fail: list[_Shot] = []
        self._malformed: list[_Shot] = []
        self._expire_hooks: list[Callable[[], None]] = []
        self._recent: deque[float] = deque()

    def fail_next(self, n: int = 1, status: int = 500, path: str | None = None) -> None:
        with self._lock:
            self._fail.append(_Shot(n, status, path))

    def malformed_next(self, n: int = 1, path: str | None = None) -> None:
        with self._lock:
            self._malformed.append(_Shot(n, 200, path))

    def expire_sessions(self) -> None:
        for hook in list(self._expire_hooks):
            hook()

    def on_expire(self, hook: Callable[[], None]) -> None:
        self._expire_hooks.append(hook)

    def clear(self) -> None:
        with self._lock:
            self.latency_s = 0.0
            self.rate_limit = None
            self.limited_until = None
            self.end_sessions = False
            self._fail.clear()
            self._malformed.clear()
            self._recent.clear()

    def limited_for(self, now: float) -> int | None:
        """The whole seconds of a 429's Retry-After at ``now``, or None when not limited."""
        until = self.limited_until
        if until is None or now >= until:
            return None
        return max(1, math.ceil(until - now))

    def take_failure(self, path: str) -> int | None:
        with self._lock:
            return _take(self._fail, path)

    def take_malformed(self, path: str) -> bool:
        with self._lock:
            return _take(self._malformed, path) is not None

    def over_rate_limit(self, now: float) -> bool:
        with self._lock:
            if self.rate_limit is None:
                return False
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                return True
            self._recent.append(now)
            return False


def _take(shots: list[_Shot], path: str) -> int | None:
    for shot in shots:
        if shot.path is None or path.startswith(shot.path):
            shot.remaining -= 1
            if shot.remaining <= 0:
                shots.remove(shot)
            return shot.status
    return None


class _Server(ThreadingHTTPServer):
    #: Connections waiting to be accepted: a collector opens many at once (a Thinknx poll
    #: asks every object together), more than the default 5 on a busy machine.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away midway (a timeout, a stopped collector) is no error of
        the simulator: no traceback on stderr for it."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class SimServer:
    """One ``ThreadingHTTPServer`` on 127.0.0.1 running ``app`` in a daemon thread."""

    def __init__(
        self,
        app: App,
        *,
        port: int = 0,
        faults: Faults | None = None,
        clock: Clock = time.time,
        server_header: str = "simulator",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.tls = tls  # serve HTTPS with this server-side context
        self.faults = faults if faults is not None else Faults()
        self.clock = clock
        self.requests: Counter[str] = Counter()
        self._port = port
        self._server_header = server_header
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._httpd is not None:
            return
        httpd = _Server(("127.0.0.1", self._port), _make_handler(self))
        httpd.daemon_threads = True
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def handle(self, request: Request) -> Response:
        """Apply the faults around the app; the base of every answer."""
        self.count(request.path)
        if self.faults.end_sessions:
            self.faults.expire_sessions()
        if self.faults.latency_s > 0:
            time.sleep(self.faults.latency_s)
        retry_after = self.faults.limited_for(self.clock())
        if retry_after is not None:  # the wait is in the text too, as some services write it
            text = f"Too many requests, try again in {retry_after} s"
            response = Response(429, f'{{"error": "{text}"}}'.encode(), "application/json")
            response.headers["Retry-After"] = str(retry_after)
            return response
        if self.faults.over_rate_limit(self.clock()):
            response = Response.text("Too Many Requests\n", 503)
            response.headers["Retry-After"] = "1"
            return response
        status = self.faults.take_failure(request.path)
        if status is not None:
            return Response.text(f"{status} simulated failure\n", status)
        response = self.app(request)
        if self.faults.take_malformed(request.path) and response.body:
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response


def _make_handler(server: SimServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes
        server_version = server._server_header
        sys_version = ""

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = server.handle(request)
            except Exception:  # a simulator bug must answer, not hang the client
                response = Response.text("500 Internal Server Error\n", 500)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        # every method the simulated APIs use (some Overkiz operations are PUT and DELETE)
        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            """Silent: request lines carry session ids."""

    return Handler


class BaseSimulator:
    """Start/stop and context management for a simulator made of one or more servers."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults if faults is not None else Faults()
        self._servers: list[SimServer] = []

    @property
    def url(self) -> str:
        return self._servers[0].url

    @property
    def requests(self) -> Counter[str]:
        """Requests served, per path, over all servers."""
        total: Counter[str] = Counter()
        for server in self._servers:
            total.update(server.requests)
        return total

    def start(self) -> None:
        started: list[SimServer] = []
        try:
            for server in self._servers:
                server.start()
                started.append(server)
        except BaseException:
            for server in started:
                server.stop()
            raise

    def stop(self) -> None:
        for server in self._servers:
            server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
