"""A loopback stand-in for the InfluxDB 2 write API (``POST /api/v2/write``).

It checks every request the way the API reference documents it: the path, the query
parameters ``org``, ``bucket`` and ``precision=ns``, ``Authorization: Token <token>``, a
``text/plain`` body, optionally ``Content-Encoding: gzip`` (the body must then be gzip), and
every line must be valid line protocol with a timestamp. Anything else is recorded in
``violations`` and answered with 400, so a test can assert ``violations == []``.

Like the real server (influxdb v2 ``http/write_handler.go``) it checks the token and the bucket
before the body, and answers an empty body with 400 "writing requires points".

Answers for the next requests can be scripted with :meth:`FakeInflux2.answer_next`.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from collector.errors import ParseError
from collector.lineprotocol import parse_line
from tests.fake_influx2_admin import Admin

# status -> the "code" the real server puts next to "message"
_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    413: "request too large",
    422: "unprocessable entity",
    429: "too many requests",
    500: "internal error",
    503: "unavailable",
}


@dataclass(frozen=True)
class Answer:
    status: int
    message: str | None = None
    retry_after: str | None = None
    raw_body: bytes | None = None  # sent instead of the JSON error body


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes  # as received (compressed when Content-Encoding is gzip)
    text: str  # decompressed body


@dataclass
class FakeInflux2:
    token: str
    org: str
    bucket: str
    url: str = ""
    lines: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    #: The management API (tests/fake_influx2_admin.py), when a test asks for it.
    admin: Admin | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_after: str | None = None,
        raw_body: bytes | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` write requests with ``status`` (after recording them)."""
        with self._lock:
            for _ in range(times):
                self._script.append(Answer(status, message, retry_after, raw_body))

    def _next_answer(self) -> Answer | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # --- request handling (runs in the server's threads) ----------------------------------

    def handle(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append(req)
        if self.admin is not None and req.path != "/api/v2/write":
            with self._lock:
                return self.admin.handle(req.method, req.path, req.query, req.headers, req.text)
        if req.method != "POST" or req.path != "/api/v2/write":
            return self._error(404, f"path not found: {req.method} {req.path}")
        problems = self._check_request(req)
        if problems:
            with self._lock:
                self.violations.extend(problems)
            return self._error(400, "; ".join(problems))
        auth = req.headers.get("authorization", "")
        if auth != f"Token {self.token}":
            return self._error(401, "unauthorized access")
        org, bucket = req.query["org"][0], req.query["bucket"][0]
        if org != self.org:
            return self._error(404, f'organization name "{org}" not found')
        if bucket != self.bucket:
            return self._error(404, f'bucket "{bucket}" not found')
        if not req.text:
            return self._error(400, "writing requires points")
        scripted = self._next_answer()
        if scripted is not None:
            return self._scripted(scripted)
        lines = req.text.split("\n")
        for line in lines:
            problem = _line_problem(line)
            if problem:
                return self._error(400, f"unable to parse '{line}': {problem}")
        with self._lock:
            self.lines.extend(lines)
        return 204, {}, b""

    def _check_request(self, req: Request) -> list[str]:
        problems: list[str] = []
        for key in ("org", "bucket", "precision"):
            if len(req.query.get(key, [])) != 1:
                problems.append(f"query parameter {key!r} must be given once: {req.query}")
        if req.query.get("precision") not in (None, ["ns"]):
            problems.append(f"precision must be ns, got {req.query.get('precision')}")
        extra = set(req.query) - {"org", "bucket", "precision"}
        if extra:
            problems.append(f"unexpected query parameters {sorted(extra)}")
        ctype = req.headers.get("content-type", "")
        if not ctype.startswith("text/plain"):
            problems.append(f"Content-Type must be text/plain, got {ctype!r}")
        encoding = req.headers.get("content-encoding", "identity")
        if encoding not in ("gzip", "identity"):
            problems.append(f"unsupported Content-Encoding {encoding!r}")
        if encoding == "gzip" and not req.body.startswith(b"\x1f\x8b"):
            problems.append("Content-Encoding is gzip but the body is not gzip data")
        if req.text.endswith("\n") or "\n\n" in req.text:
            problems.append("empty line in the body")
        return problems

    def _scripted(self, answer: Answer) -> tuple[int, dict[str, str], bytes]:
        headers = {"Retry-After": answer.retry_after} if answer.retry_after is not None else {}
        if answer.raw_body is not None:
            return answer.status, {"Content-Type": "text/plain", **headers}, answer.raw_body
        status, base, body = self._error(answer.status, answer.message or "scripted failure")
        return status, {**base, **headers}, body

    @staticmethod
    def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"code": _CODES.get(status, "internal error"), "message": message})
        return status, {"Content-Type": "application/json; charset=utf-8"}, body.encode()


def _line_problem(line: str) -> str | None:
    if not line.strip():
        return "empty line"
    try:
        parsed = parse_line(line)
    except ParseError as err:
        return str(err)
    if not parsed.fields:
        return "no fields"
    if not line.rstrip().rsplit(" ", 1)[-1].lstrip("-").isdigit():
        return "no timestamp"
    return None


def _make_handler(fake: FakeInflux2) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            text = raw
            if headers.get("content-encoding") == "gzip" and raw.startswith(b"\x1f\x8b"):
                text = gzip.decompress(raw)
            split = urlsplit(self.path)
            req = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=headers,
                body=raw,
                text=text.decode("utf-8"),
            )
            status, out_headers, body = fake.handle(req)
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            if "X-Influxdb-Version" not in out_headers:
                self.send_header("X-Influxdb-Version", "v2.7.0-fake")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running_fake_influx2(
    token: str = "s3cr3t-t0ken", org: str = "home", bucket: str = "energy"
) -> Iterator[FakeInflux2]:
    fake = FakeInflux2(token=token, org=org, bucket=bucket)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def answering_flux(answer: str) -> Iterator[tuple[str, list[str]]]:
    """A loopback InfluxDB 2 query API (``POST /api/v2/query``) that answers every query
    with ``answer`` (annotated CSV, as the server writes it): its URL, and the Flux texts
    it was asked, in order."""
    queries: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            queries.append(json.loads(body)["query"])
            data = answer.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", queries
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
