"""A lean keep-alive HTTP/1.1 client on asyncio streams, for the InfluxDB 1.x store.

The collector's event loop is one thread, and a general HTTP client costs it about five
times the CPU of the request itself per ``POST /write`` on loopback. This client does only
what the store asks (RFC 9112 message framing; RFC 9110 for field syntax): one request per
connection at a time, idle connections reused last-in first-out, a whole request bounded by
one timeout. An answer it cannot read is an ``Unreadable`` error saying what was wrong; no
answer at all is a ``RequestFailed`` naming the cause.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from collector import __version__
from collector.errors import ConfigError

USER_AGENT = f"collector/{__version__}"
MAX_LINE = 64 * 1024  # bytes in one status, header or chunk-size line
MAX_HEADERS = 100  # header (or trailer) lines in one answer
MAX_BODY = 16 * 1024 * 1024
_MAX_INTERIM = 8  # 1xx answers skipped before the final one
_MAX_SHOWN = 200

_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 5.5: no CTL but HTAB
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,18}")


class HttpError(Exception):
    """A request without a usable answer."""


class RequestFailed(HttpError):
    """No answer at all; the subclass names where it failed."""


class ConnectError(RequestFailed):
    """No connection: refused, unreachable, unknown host, TLS handshake refused."""


class WriteError(RequestFailed):
    """The connection broke while the request was sent."""


class ReadError(RequestFailed):
    """The connection broke before the answer's first byte."""


class Disconnected(RequestFailed):
    """The server closed the connection without answering."""


class RequestTimeout(HttpError):
    """No complete answer within the timeout."""


class Unreadable(HttpError):
    """The server answered, but not in HTTP/1.1 as RFC 9112 reads it. ``header`` and
    ``value`` (control characters escaped) name an offending header, if one is to blame."""

    def __init__(self, what: str, header: str | None = None, value: str = "") -> None:
        self.header = header
        self.value = value
        super().__init__(what if header is None else f"{what} ({header}: {value})")


def escape(text: str | bytes) -> str:
    """``text`` with control characters shown as Python's repr shows them (``\\x00``),
    cut to a readable length; bytes are read as UTF-8, else Latin-1."""
    if isinstance(text, bytes):
        text = _decode(text)
    shown = "".join(repr(c)[1:-1] if c < " " or c == "\x7f" else c for c in text)
    return shown if len(shown) <= _MAX_SHOWN else shown[:_MAX_SHOWN] + "..."


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class Headers(Mapping[str, str]):
    """An answer's header fields by name, any case; repeated fields joined by ", "."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # keys in lower case

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@functools.cache
def unverified_tls() -> ssl.SSLContext:
    """For ``verify_tls = false``: TLS without any certificate or host name check."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Retry(Exception):
    """A reused connection failed before the answer began: ``error`` if retried in vain."""

    def __init__(self, error: RequestFailed) -> None:
        self.error = error


class _Conn:
    __slots__ = ("reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False

    def close(self) -> None:
        self.writer.transport.abort()  # nothing to flush; drop whatever is unsent


class Http1Client:
    """Requests to one server (``url``: ``http[s]://host[:port][/base]``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        tls: ssl.SSLContext | bool = True,
        max_connections: int = 4,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port = -1
        if scheme not in ("http", "https") or not parts.hostname or port == -1:
            shown = f"{scheme}://{parts.hostname or ''}{parts.path}" if scheme else "(none)"
            raise ConfigError(f"InfluxDB URL {shown}: needs http:// or https://, a host "
                              "and a valid port")
        self.host = parts.hostname
        self.port = port or (443 if scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.ssl_context: ssl.SSLContext | None = None
        if scheme == "https":
            self.ssl_context = tls if isinstance(tls, ssl.SSLContext) else unverified_tls()
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_field = host if port is None else f"{host}:{port}"
        self.timeout = timeout
        self.max_connections = max_connections
        self._idle: list[_Conn] = []  # last in, first out: the warmest connection first
        self._slots = asyncio.Semaphore(max_connections)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        self._bind_loop()
        head = self._head(method, path, params, headers, body)
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                conn = self._take_idle()
                if conn is not None:
                    try:
                        return await self._exchange(conn, method, head, body)
                    except _Retry:
                        pass  # closed on the way; a write overwrites the same points
                conn = await self._connect()
                return await self._exchange(conn, method, head, body)  # never retried
        except TimeoutError:
            raise RequestTimeout(f"no answer within {self.timeout:g} s") from None

    async def aclose(self) -> None:
        """Close the idle connections; one in use is closed when handed back."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        await asyncio.sleep(0)  # let the transports release their sockets

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections and waiters belong to one event loop
            for conn in self._idle:
                conn.close()
            self._idle.clear()
            self._slots = asyncio.Semaphore(self.max_connections)
            self._loop = loop

    def _take_idle(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()  # the server closed it while idle
        return None

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl_context, limit=MAX_LINE,
                server_hostname=self.host if self.ssl_context is not None else None,
            )  # fmt: skip
        except OSError as err:  # refused, unreachable, unknown host, TLS (ssl.SSLError)
            raise ConnectError(_cause(err)) from err
        return _Conn(reader, writer)

    def _head(self, method: str, path: str, params: Mapping[str, str] | None,
              headers: Mapping[str, str] | None, body: bytes | None) -> bytes:
        target = self.base_path + path
        if params:
            target += "?" + urlencode(params)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_field}",
                 f"User-Agent: {USER_AGENT}", "Accept-Encoding: identity"]
        for name, value in (headers or {}).items():
            if "\r" in value or "\n" in value or not _TOKEN.fullmatch(name.encode()):
                raise ValueError(f"header {name!r} cannot be sent")
            lines.append(f"{name}: {value}")
        if body is not None or method == "POST":
            lines.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _exchange(self, conn: _Conn, method: str, head: bytes,
                        body: bytes | None) -> Answer:
        """One request on ``conn``; the connection goes back to the pool only when the
        answer was read whole and the server keeps it open, else it is closed."""
        keep = False
        try:
            answer, keep = await self._send_and_read(conn, method, head, body)
            return answer
        finally:
            if keep and not self._closed:
                conn.reused = True
                self._idle.append(conn)
            else:
                conn.close()

    async def _send_and_read(self, conn: _Conn, method: str, head: bytes,
                             body: bytes | None) -> tuple[Answer, bool]:
        early: RequestFailed | None = None
        try:
            conn.writer.write(head + body if body and len(body) < 65536 else head)
            if body and len(body) >= 65536:
                conn.writer.write(body)
            await conn.writer.drain()
        except OSError as err:
            early = WriteError(_cause(err))
        if early is None:
            try:
                first = await conn.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as err:
                if err.partial:
                    shown = escape(err.partial)
                    raise Unreadable(f'answer cut short in its status line "{shown}"') from None
                early = Disconnected("the server closed the connection without answering")
            except asyncio.LimitOverrunError:
                raise Unreadable(f"a status line longer than {MAX_LINE} bytes") from None
            except OSError as err:
                early = ReadError(_cause(err))
        if early is not None:
            if conn.reused:
                raise _Retry(early)
            raise early
        try:
            return await _read_answer(conn.reader, method, first)
        except OSError as err:
            raise Unreadable(f"answer cut short: {_cause(err)}") from None


async def _read_answer(reader: asyncio.StreamReader, method: str,
                       line: bytes) -> tuple[Answer, bool]:
    """The answer whose status line is ``line``; True when the connection can be reused."""
    for _ in range(_MAX_INTERIM):
        match = _STATUS.fullmatch(line)
        if match is None:
            shown = escape(line.rstrip(b"\r\n"))
            raise Unreadable(f'malformed status line "{shown}"')
        status = int(match[2])
        fields = await _read_fields(reader, "header")
        if status >= 200:
            break
        if status == 101:
            raise Unreadable("unexpected 101 Switching Protocols")
        line = await _line(reader, "status line")  # an interim 1xx answer: the next one
    else:
        raise Unreadable(f"more than {_MAX_INTERIM} interim 1xx answers")
    headers = Headers(fields)
    keep = match[1] == b"1" and "close" not in _tokens(headers.get("connection", ""))
    coding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif coding is not None:
        if coding.strip().lower() != "chunked":
            raise Unreadable("unsupported transfer coding", "Transfer-Encoding", escape(coding))
        body = await _read_chunked(reader)
        keep = keep and length is None  # both framings: RFC 9112 6.3 says close afterwards
    elif length is not None:
        size = _content_length(length)
        try:
            body = await reader.readexactly(size)
        except asyncio.IncompleteReadError as err:
            raise Unreadable(f"body cut short after {len(err.partial)} of {size} bytes") from None
    else:  # RFC 9112 6.3: the body runs until the server closes the connection
        body = await _read_to_close(reader)
        keep = False
    return Answer(status, headers, body), keep


async def _line(reader: asyncio.StreamReader, what: str) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise Unreadable(f"answer cut short in a {what}") from None
    except asyncio.LimitOverrunError:
        raise Unreadable(f"a {what} longer than {MAX_LINE} bytes") from None


async def _read_fields(reader: asyncio.StreamReader, what: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _line(reader, f"{what} line")
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if not line:
            return fields
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(raw_name):
            raise Unreadable(f'malformed {what} line "{escape(line)}"')
        name = raw_name.decode("ascii")
        value = _decode(raw_value.strip(b" \t"))
        if _CONTROL.search(raw_value):
            raise Unreadable(f"a control character in a {what} value", name, escape(value))
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    raise Unreadable(f"more than {MAX_HEADERS} {what} lines")


def _content_length(text: str) -> int:
    values = {v.strip() for v in text.split(",")}  # "5, 5": one length repeated
    if len(values) != 1 or not _DIGITS.fullmatch(size := values.pop()):
        raise Unreadable("bad length", "Content-Length", escape(text))
    if int(size) > MAX_BODY:
        raise Unreadable(f"a body larger than {MAX_BODY} bytes", "Content-Length", text)
    return int(size)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await _line(reader, "chunk size line")
        size_text = line.split(b";", 1)[0].strip(b" \t\r\n")  # chunk extensions ignored
        if not _HEX.fullmatch(size_text):
            shown = escape(line.rstrip(b"\r\n"))
            raise Unreadable(f'bad chunk size "{shown}"')
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > MAX_BODY:
            raise Unreadable(f"a chunked body larger than {MAX_BODY} bytes")
        try:
            data = await reader.readexactly(size + 2)
        except asyncio.IncompleteReadError:
            raise Unreadable("chunked body cut short") from None
        if data[-2:] != b"\r\n":
            raise Unreadable("a chunk not ended by CRLF")
        parts.append(data[:-2])
    await _read_fields(reader, "trailer")
    return b"".join(parts)


async def _read_to_close(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
        if total > MAX_BODY:
            raise Unreadable(f"a body larger than {MAX_BODY} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _tokens(text: str) -> set[str]:
    return {t.strip().lower() for t in text.split(",")}


def _cause(err: BaseException) -> str:
    return str(err) or type(err).__name__
