"""A lean keep-alive HTTP/1.1 client on asyncio streams, for the InfluxDB 1.x store.

The collector's event loop is one thread, and a general HTTP client costs it several times
the CPU of the request itself per ``POST /write`` on loopback. This one does only what the
store asks (RFC 9112 framing, RFC 9110 field syntax): one request per connection at a time,
idle connections reused last-in first-out, a whole request bounded by one timeout. An answer
it cannot read raises ``Unreadable`` saying what was wrong; no answer at all raises a
``RequestFailed`` naming the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from collector import __version__
from collector.errors import ConfigError

log = logging.getLogger(__name__)

USER_AGENT = f"collector/{__version__}"
MAX_LINE = 64 * 1024  # bytes in one header line
MAX_HEAD = 256 * 1024  # bytes in a header section: status line, fields, empty line
MAX_HEADERS = 100  # header (or trailer) lines in one answer
MAX_BODY = 16 * 1024 * 1024
_MAX_INTERIM = 8  # 1xx answers skipped before the final one
_MAX_SHOWN = 500

_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 5.5: no CTL but HTAB
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,18}")


class HttpError(Exception):
    """A request without a usable answer."""


class RequestFailed(HttpError):
    """No answer at all. ``kind`` says where: ``ConnectError`` (refused, unreachable, unknown
    host, TLS handshake), ``WriteError`` (broken while sending), ``ReadError`` (broken before
    the answer's first byte) or ``Disconnected`` (closed without an answer)."""

    def __init__(self, kind: str, cause: str) -> None:
        self.kind = kind
        super().__init__(cause)


class RequestTimeout(HttpError):
    """No complete answer within the timeout."""


class Unreadable(HttpError):
    """The server answered, but not in HTTP/1.1 as RFC 9112 reads it. ``header`` and
    ``value`` (control characters escaped) name an offending header, if one is to blame."""

    def __init__(self, what: str, header: str | None = None, value: str = "") -> None:
        self.header = header
        self.value = value
        super().__init__(what if header is None else f"{what} ({header}: {value})")


class _NoAnswer(Exception):
    """The connection ended before the first byte of an answer."""


class _Retry(Exception):
    """A reused connection failed before the answer began: worth one more try."""


def escape(text: str | bytes) -> str:
    """``text`` (bytes read as UTF-8, else Latin-1) with control characters shown as Python's
    repr shows them (``\\x00``), cut to a readable length."""
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
    """An answer's header fields by name in any case."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # keys in lower case

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


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


class _Conn:
    __slots__ = ("reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.reused = reader, writer, False

    def close(self) -> None:
        try:
            self.writer.transport.abort()  # nothing worth flushing; never reused after this
        except RuntimeError:  # its event loop is closed: end the TCP connection at least
            with contextlib.suppress(OSError):
                self.writer.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


class Http1Client:
    """Requests to one server, ``url`` = ``http[s]://host[:port][/base path]``; ``tls`` is
    the certificate check of https (a context, or False for none)."""

    def __init__(self, url: str, *, timeout: float, tls: ssl.SSLContext | bool = True,
                 max_connections: int = 4) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port = 0
        if scheme not in ("http", "https") or not parts.hostname or port == 0:
            shown = f"{scheme}://{parts.hostname or ''}{parts.path}"  # no user:password@
            raise ConfigError(f"URL {shown!r}: needs http:// or https://, a host and a valid "
                              "port")
        self.host = parts.hostname
        self.port = port or (443 if scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")  # e.g. behind a reverse proxy at /influx
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
        self._heads: dict[tuple[object, ...], bytes] = {}

    async def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None,
                      body: bytes | None = None) -> Answer:
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections and waiters belong to one event loop
            self._drop_idle()
            self._slots, self._loop = asyncio.Semaphore(self.max_connections), loop
        head = self._head(method, path, params, headers, body)
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                while self._idle:
                    conn = self._idle.pop()
                    if conn.reader.at_eof() or conn.writer.is_closing():
                        conn.close()  # the server closed it while idle
                        continue
                    try:
                        return await self._exchange(conn, method, head, body)
                    except _Retry:  # a write is idempotent: the same points overwrite
                        log.debug("%s closed a reused connection before answering; trying a "
                                  "new one", self._host_field)
                        break
                return await self._exchange(await self._connect(), method, head, body)
        except TimeoutError:
            raise RequestTimeout(f"no answer within {self.timeout:g} s") from None

    async def aclose(self) -> None:
        """Close the idle connections; one in use is closed when handed back."""
        self._closed = True
        self._drop_idle()
        await asyncio.sleep(0)  # let the transports release their sockets

    def _drop_idle(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl_context, limit=MAX_HEAD,
                server_hostname=self.host if self.ssl_context is not None else None)
        except OSError as err:  # refused, unreachable, unknown host, TLS (ssl.SSLError)
            raise RequestFailed("ConnectError", _cause(err)) from err
        return _Conn(reader, writer)

    def _head(self, method: str, path: str, params: Mapping[str, str] | None,
              headers: Mapping[str, str] | None, body: bytes | None) -> bytes:
        key = (method, path, tuple((params or {}).items()), tuple((headers or {}).items()))
        prefix = self._heads.get(key)
        if prefix is None:  # the store sends the same few requests again and again
            target = self.base_path + path + ("?" + urlencode(params) if params else "")
            lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_field}",
                     f"User-Agent: {USER_AGENT}", "Accept-Encoding: identity"]
            for name, value in key[3]:
                if "\r" in value or "\n" in value or not _TOKEN.fullmatch(name.encode()):
                    raise ValueError(f"header {name!r} cannot be sent")
                lines.append(f"{name}: {value}")
            prefix = ("\r\n".join(lines) + "\r\n").encode("latin-1")
            if len(self._heads) >= 16:
                self._heads.clear()
            self._heads[key] = prefix
        if body is not None or method == "POST":
            return b"%sContent-Length: %d\r\n\r\n" % (prefix, len(body or b""))
        return prefix + b"\r\n"

    async def _exchange(self, conn: _Conn, method: str, head: bytes,
                        body: bytes | None) -> Answer:
        """One request on ``conn``. It goes back to the pool only when the answer was read
        whole and the server keeps it open; failed, timed out or cancelled, it is closed."""
        keep = False
        try:
            answer, keep = await _send_and_read(conn, method, head, body)
            return answer
        finally:
            if keep and not self._closed:
                conn.reused = True
                self._idle.append(conn)
            else:
                conn.close()


async def _send_and_read(conn: _Conn, method: str, head: bytes,
                         body: bytes | None) -> tuple[Answer, bool]:
    sent = False
    try:
        if body and len(body) >= 65536:  # two sends rather than a copy of the body
            conn.writer.write(head)
            conn.writer.write(body)
        else:
            conn.writer.write(head + body if body else head)
        await conn.writer.drain()
        sent = True
        first = await _read_head(conn.reader)
    except (_NoAnswer, OSError) as err:
        if conn.reused:  # the server may have closed it while idle: a race, not an outage
            raise _Retry from None
        if isinstance(err, _NoAnswer):
            raise RequestFailed("Disconnected", "the server closed the connection without "
                                "answering") from None
        raise RequestFailed("ReadError" if sent else "WriteError", _cause(err)) from err
    try:
        answer, keep = await _read_answer(conn.reader, method, first)
    except _NoAnswer:
        raise Unreadable("answer cut short after an interim answer") from None
    except OSError as err:
        raise Unreadable(f"answer cut short: {_cause(err)}") from None
    if answer.status == 408 and conn.reused:  # RFC 9110 15.5.9: it gave up the idle connection
        raise _Retry
    return answer, keep


def parse_head(head: bytes) -> tuple[bool, int, Headers]:
    """An answer's header section (RFC 9112 2.1, 4, 5): True when HTTP/1.1, the status and
    the fields, repeated ones joined by ", " (RFC 9110 5.3)."""
    lines = head.removesuffix(b"\r\n\r\n").split(b"\r\n")
    match = _STATUS.fullmatch(lines[0])
    if match is None:
        raise Unreadable(f'malformed status line "{escape(lines[0])}"')
    if len(lines) > MAX_HEADERS + 1:
        raise Unreadable(f"more than {MAX_HEADERS} header lines")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if len(line) > MAX_LINE:
            raise Unreadable(f"a header line longer than {MAX_LINE} bytes")
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(raw_name):
            raise Unreadable(f'malformed header line "{escape(line)}"')
        name, value = raw_name.decode("ascii"), _decode(raw_value.strip(b" \t"))
        if _CONTROL.search(raw_value):
            raise Unreadable("a control character in a header value", name, escape(value))
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return match[1] == b"1", int(match[2]), Headers(fields)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """Status line and header fields through the empty line (CRLF line ends only)."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial:
            raise _NoAnswer from None
        shown = escape(err.partial)
        raise Unreadable(f'answer cut short in its header section "{shown}"') from None
    except asyncio.LimitOverrunError:
        raise Unreadable(f"a header section longer than {MAX_HEAD} bytes") from None


async def _read_answer(reader: asyncio.StreamReader, method: str,
                       head: bytes) -> tuple[Answer, bool]:
    """The answer whose header section is ``head``; True when the connection can be reused."""
    for _ in range(_MAX_INTERIM):
        http11, status, headers = parse_head(head)
        if status >= 200:
            break
        if status == 101:
            raise Unreadable("unexpected 101 Switching Protocols")
        head = await _read_head(reader)  # an interim 1xx answer: the final one follows
    else:
        raise Unreadable(f"more than {_MAX_INTERIM} interim 1xx answers")
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = http11 and "close" not in connection
    coding, length = headers.get("transfer-encoding"), headers.get("content-length")
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
        data = bytearray()
        while chunk := await reader.read(65536):
            data += chunk
            if len(data) > MAX_BODY:
                raise Unreadable(f"a body larger than {MAX_BODY} bytes")
        body, keep = bytes(data), False
    return Answer(status, headers, body), keep


def _content_length(text: str) -> int:
    values = {v.strip() for v in text.split(",")}  # "5, 5": one length repeated is fine
    if len(values) != 1 or not _DIGITS.fullmatch(size := values.pop()):
        raise Unreadable("bad length", "Content-Length", escape(text))
    if int(size) > MAX_BODY:
        raise Unreadable(f"a body larger than {MAX_BODY} bytes", "Content-Length", text)
    return int(size)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """RFC 9112 7.1: chunks (extensions ignored), then trailer fields (read, discarded)."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = await _line(reader, "chunk size line")
        size_text = line[:-2].split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size_text):
            raise Unreadable(f'bad chunk size "{escape(line[:-2])}"')
        if (size := int(size_text, 16)) == 0:
            break
        total += size
        if total > MAX_BODY:
            raise Unreadable(f"a chunked body larger than {MAX_BODY} bytes")
        try:
            data = await reader.readexactly(size + 2)
        except asyncio.IncompleteReadError:
            raise Unreadable("chunked body cut short in a chunk") from None
        if data[-2:] != b"\r\n":
            raise Unreadable("a chunk not ended by CRLF")
        parts.append(data[:-2])
    for _ in range(MAX_HEADERS + 1):
        if await _line(reader, "trailer line") == b"\r\n":
            return b"".join(parts)
    raise Unreadable(f"more than {MAX_HEADERS} trailer lines")


async def _line(reader: asyncio.StreamReader, what: str) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError:
        raise Unreadable(f"chunked body cut short in a {what}") from None
    except asyncio.LimitOverrunError:
        raise Unreadable(f"a {what} longer than {MAX_HEAD} bytes") from None


def _cause(err: BaseException) -> str:
    return str(err) or type(err).__name__
