"""The InfluxDB v1 store against a real influxd, plus a loopback stub for answers influxd
(running without auth here) cannot give."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from collector.errors import (
    StoreAuthError,
    StoreError,
    StoreRejected,
    StoreTooLarge,
    StoreUnavailable,
)
from collector.stores.influx_v1 import InfluxV1Store, parse_retry_after
from tests.influxd import Influxd, running_influxd

PASSWORD = "pw-9f8e7d-very-secret"

LINES = [
    "power_w,device=Plug\\ 1,device_id=116570012345,site=home,source=fritzbox value=12.34 "
    "1700000000000000000",
    "power_w,device=Plug\\ 1,device_id=116570012345,site=home,source=fritzbox value=0.0 "
    "1700000060000000123",
    "temperature_c,device=Living\\,room,device_id=09995,room=Living\\ room,site=home,"
    "source=fritzbox value=21.5 1700000000000000000",
    "state,device=HKR,device_id=09995,name=mode,site=home,source=fritzbox value=0.0,"
    'label="off \\"manual\\"" 1700000060000000000',
]


def run(store: InfluxV1Store, lines: list[str]) -> None:
    async def go() -> None:
        try:
            await store.write(lines)
        finally:
            await store.aclose()

    asyncio.run(go())


def check(store: InfluxV1Store) -> str:
    async def go() -> str:
        try:
            return await store.check()
        finally:
            await store.aclose()

    return asyncio.run(go())


# --- against the real server ----------------------------------------------------------------


def test_lines_read_back_identically(influxd: Influxd, influx_db: str) -> None:
    run(InfluxV1Store(influxd.url, influx_db), LINES)
    power = influxd.rows("SELECT * FROM power_w GROUP BY *", influx_db)
    assert power == [
        {
            "time": 1700000000000000000,
            "value": 12.34,
            "_measurement": "power_w",
            "device": "Plug 1",
            "device_id": "116570012345",
            "site": "home",
            "source": "fritzbox",
        },
        {
            "time": 1700000060000000123,
            "value": 0.0,
            "_measurement": "power_w",
            "device": "Plug 1",
            "device_id": "116570012345",
            "site": "home",
            "source": "fritzbox",
        },
    ]
    temp = influxd.rows("SELECT * FROM temperature_c GROUP BY *", influx_db)
    assert temp == [
        {
            "time": 1700000000000000000,
            "value": 21.5,
            "_measurement": "temperature_c",
            "device": "Living,room",
            "device_id": "09995",
            "room": "Living room",
            "site": "home",
            "source": "fritzbox",
        },
    ]
    state = influxd.rows("SELECT * FROM state GROUP BY *", influx_db)
    assert state == [
        {
            "time": 1700000060000000000,
            "value": 0.0,
            "label": 'off "manual"',
            "_measurement": "state",
            "device": "HKR",
            "device_id": "09995",
            "name": "mode",
            "site": "home",
            "source": "fritzbox",
        },
    ]
    types = influxd.rows("SHOW FIELD KEYS", influx_db)
    assert sorted((r["_measurement"], r["fieldKey"], r["fieldType"]) for r in types) == [
        ("power_w", "value", "float"),
        ("state", "label", "string"),
        ("state", "value", "float"),
        ("temperature_c", "value", "float"),
    ]


def test_rewrite_is_idempotent(influxd: Influxd, influx_db: str) -> None:
    run(InfluxV1Store(influxd.url, influx_db), LINES)
    run(InfluxV1Store(influxd.url, influx_db), LINES)
    rows = influxd.rows("SELECT count(value) FROM power_w", influx_db)
    assert rows[0]["count"] == 2


def test_retention_policy_is_used(influxd: Influxd, influx_db: str) -> None:
    influxd.query(f'CREATE RETENTION POLICY "short" ON "{influx_db}" DURATION 0s REPLICATION 1')
    store = InfluxV1Store(influxd.url, influx_db, retention_policy="short")
    run(store, LINES[:1])
    assert influxd.rows('SELECT value FROM "short"."power_w"', influx_db) == [
        {"time": 1700000000000000000, "value": 12.34, "_measurement": "power_w"}
    ]
    assert influxd.rows('SELECT value FROM "autogen"."power_w"', influx_db) == []


def test_field_type_conflict_is_rejected_with_server_message(
    influxd: Influxd, influx_db: str
) -> None:
    resp = influxd.write(influx_db, "conflict,device_id=a value=1i 1700000000000000000")
    assert resp.status_code == 204
    with pytest.raises(StoreRejected) as info:
        run(
            InfluxV1Store(influxd.url, influx_db),
            ["conflict,device_id=a value=1.5 1700000060000000000"],
        )
    assert info.value.status == 400
    assert str(info.value) == (
        'partial write: field type conflict: input field "value" on measurement "conflict" '
        "is type float, already exists as type integer dropped=1"
    )


def test_malformed_line_is_rejected(influxd: Influxd, influx_db: str) -> None:
    with pytest.raises(StoreRejected) as info:
        run(InfluxV1Store(influxd.url, influx_db), ["no_fields 1700000000000000000"])
    assert info.value.status == 400
    assert str(info.value).startswith("unable to parse 'no_fields 1700000000000000000'")


def test_missing_database(influxd: Influxd) -> None:
    with pytest.raises(StoreUnavailable) as info:
        run(InfluxV1Store(influxd.url, "no_such_db"), LINES)
    assert str(info.value) == (
        f"InfluxDB at {influxd.url}: database 'no_such_db' does not exist (create it with "
        'CREATE DATABASE; server said: database not found: "no_such_db")'
    )
    with pytest.raises(StoreUnavailable) as info:
        check(InfluxV1Store(influxd.url, "no_such_db"))
    assert "database 'no_such_db' does not exist" in str(info.value)
    # never created behind the user's back
    names = [r["name"] for r in influxd.rows("SHOW DATABASES", "")]
    assert "no_such_db" not in names


def test_check_passes_and_writes_nothing(influxd: Influxd, influx_db: str) -> None:
    text = check(InfluxV1Store(influxd.url, influx_db, retention_policy="autogen"))
    assert text.startswith("InfluxDB ")
    assert text.endswith(
        f" at {influxd.url}: database '{influx_db}', retention policy 'autogen' writable"
    )
    assert influxd.rows("SHOW MEASUREMENTS", influx_db) == []


def test_check_missing_retention_policy(influxd: Influxd, influx_db: str) -> None:
    with pytest.raises(StoreUnavailable) as info:
        check(InfluxV1Store(influxd.url, influx_db, retention_policy="nope"))
    assert str(info.value) == (
        f"InfluxDB at {influxd.url}: retention policy 'nope' does not exist on database "
        f"'{influx_db}' (server said: retention policy not found: nope)"
    )


def test_missing_retention_policy_on_write(influxd: Influxd, influx_db: str) -> None:
    with pytest.raises(StoreUnavailable) as info:
        run(InfluxV1Store(influxd.url, influx_db, retention_policy="nope"), LINES)
    assert str(info.value) == (
        f"InfluxDB at {influxd.url}: retention policy 'nope' does not exist on database "
        f"'{influx_db}' (server said: retention policy not found: nope)"
    )


def test_server_stopped_then_back(tmp_path: Path) -> None:
    with running_influxd(tmp_path) as server:
        server.create_db("db")
        run(InfluxV1Store(server.url, "db"), LINES[:1])
        server.stop()
        with pytest.raises(StoreUnavailable) as info:
            run(InfluxV1Store(server.url, "db"), LINES[1:2])
        assert str(info.value).startswith(f"InfluxDB at {server.url}: /write failed: ConnectError")
        assert info.value.retry_after is None
        with pytest.raises(StoreUnavailable):
            check(InfluxV1Store(server.url, "db"))
        server.start()
        run(InfluxV1Store(server.url, "db"), LINES[1:2])
        assert [r["time"] for r in server.rows("SELECT value FROM power_w", "db")] == [
            1700000000000000000,
            1700000060000000123,
        ]


# --- against a loopback stub ----------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    url: str = ""
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[Stub]:
    yield from _serve_stub()


def _serve_stub(tls: ssl.SSLContext | None = None) -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            state.seen.append(
                Seen(
                    self.command,
                    split.path,
                    parse_qs(split.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            status, headers, out = state.answers.pop(0) if state.answers else (204, {}, b"")
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_request_shape(stub: Stub) -> None:
    run(
        InfluxV1Store(
            stub.url + "/", "energy", retention_policy="rp1", username="me", password=PASSWORD
        ),
        LINES,
    )
    [req] = stub.seen
    assert req.method == "POST"
    assert req.path == "/write"
    assert req.query == {"db": ["energy"], "rp": ["rp1"], "precision": ["ns"]}
    assert req.headers["content-encoding"] == "gzip"
    assert (
        req.headers["authorization"]
        == "Basic " + base64.b64encode(f"me:{PASSWORD}".encode()).decode()
    )
    assert gzip.decompress(req.body).decode() == "\n".join(LINES)
    assert PASSWORD not in str(req.query)


def test_no_auth_header_without_username(stub: Stub) -> None:
    run(InfluxV1Store(stub.url, "energy"), LINES)
    [req] = stub.seen
    assert "authorization" not in req.headers
    assert req.query == {"db": ["energy"], "precision": ["ns"]}


def test_empty_batch_sends_nothing(stub: Stub) -> None:
    run(InfluxV1Store(stub.url, "energy"), [])
    assert stub.seen == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_hide_the_password(stub: Stub, status: int) -> None:
    stub.answers.append(
        (status, {"Content-Type": "application/json"}, _json({"error": "authorization failed"}))
    )
    store = InfluxV1Store(stub.url, "energy", username="me", password=PASSWORD)
    with pytest.raises(StoreAuthError) as info:
        run(store, LINES)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)
    assert PASSWORD not in repr(store)
    assert PASSWORD not in store.name
    assert str(info.value).endswith(f"(HTTP {status}): authorization failed")


def test_check_auth_error(stub: Stub) -> None:
    stub.answers.append(
        (401, {"Content-Type": "application/json"}, _json({"error": "authorization failed"}))
    )
    with pytest.raises(StoreAuthError) as info:
        check(InfluxV1Store(stub.url, "energy", username="me", password=PASSWORD))
    assert str(info.value) == (
        f"InfluxDB at {stub.url} refused the credentials (HTTP 401): authorization failed"
    )


def test_check_permission_denied_on_write(stub: Stub) -> None:
    stub.answers.append((204, {"X-Influxdb-Version": "1.8.10"}, b""))
    stub.answers.append(
        (
            403,
            {"Content-Type": "application/json"},
            _json({"error": '"me" user is not authorized to write to database "energy"'}),
        )
    )
    with pytest.raises(StoreAuthError) as info:
        check(InfluxV1Store(stub.url, "energy", username="me", password=PASSWORD))
    assert str(info.value) == (
        f"InfluxDB at {stub.url} denied write permission (HTTP 403): "
        '"me" user is not authorized to write to database "energy"'
    )
    assert [s.path for s in stub.seen] == ["/ping", "/write"]
    assert stub.seen[1].body == b""


def test_check_wrong_url(stub: Stub) -> None:
    stub.answers.append((404, {}, b"404 page not found"))
    with pytest.raises(StoreUnavailable) as info:
        check(InfluxV1Store(stub.url, "energy"))
    assert str(info.value) == (f"InfluxDB at {stub.url}: /ping answered 404 (not an InfluxDB URL?)")


def test_check_ok_text(stub: Stub) -> None:
    stub.answers.append((204, {"X-Influxdb-Version": "1.8.10"}, b""))
    stub.answers.append((204, {}, b""))
    text = check(InfluxV1Store(stub.url, "energy"))
    assert text == f"InfluxDB 1.8.10 at {stub.url}: database 'energy' writable"


def test_password_in_url_is_not_shown(stub: Stub) -> None:
    url = stub.url.replace("http://", f"http://me:{PASSWORD}@")
    stub.answers.append((503, {}, b""))
    store = InfluxV1Store(url, "energy")
    with pytest.raises(StoreUnavailable) as info:
        run(store, LINES)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(store)
    assert str(info.value) == f"InfluxDB at {stub.url} answered HTTP 503"


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "retry_after", "text"),
    [
        (
            413,
            {},
            _json({"error": "Request Entity Too Large"}),
            StoreTooLarge,
            None,
            "refused the batch as too large (HTTP 413): Request Entity Too Large",
        ),
        (
            429,
            {"Retry-After": "12"},
            b"",
            StoreUnavailable,
            12.0,
            "asked us to slow down (HTTP 429)",
        ),
        (
            503,
            {"Retry-After": "3"},
            _json({"error": "engine closed"}),
            StoreUnavailable,
            3.0,
            "answered HTTP 503: engine closed",
        ),
        (503, {}, b"", StoreUnavailable, None, "answered HTTP 503"),
        (
            500,
            {"X-Influxdb-Error": "timeout"},
            b"",
            StoreUnavailable,
            None,
            "answered HTTP 500: timeout",
        ),
        (
            422,
            {},
            _json({"error": "points beyond retention policy dropped=1"}),
            StoreRejected,
            None,
            None,
        ),
    ],
)
def test_status_mapping(
    stub: Stub,
    status: int,
    headers: dict[str, str],
    body: bytes,
    kind: type[StoreError],
    retry_after: float | None,
    text: str | None,
) -> None:
    stub.answers.append((status, headers, body))
    with pytest.raises(kind) as info:
        run(InfluxV1Store(stub.url, "energy"), LINES)
    err = info.value
    if isinstance(err, StoreUnavailable):
        assert err.retry_after == retry_after
    if isinstance(err, StoreRejected):
        assert err.status == 422
        assert str(err) == "points beyond retention policy dropped=1"
    else:
        assert str(err) == f"InfluxDB at {stub.url} {text}"


def test_timeout_is_unavailable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(StoreUnavailable) as info:
            run(InfluxV1Store(f"http://127.0.0.1:{port}", "energy", timeout=0.3), LINES)
    assert str(info.value) == f"InfluxDB at http://127.0.0.1:{port}: /write timed out"


# --- Retry-After ----------------------------------------------------------------------------

NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-3", None),
        ("soon", None),
        ("Fri, 01 Mar 2024 12:01:30 GMT", 90.0),
        ("Fri, 01 Mar 2024 11:00:00 GMT", 0.0),
        ("Friday, 01-Mar-24 12:00:10 GMT", 10.0),
        ("Fri Mar  1 12:00:20 2024", 20.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture
def https_stub(self_signed: tuple[Path, Path]) -> Iterator[Stub]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*self_signed)
    yield from _serve_stub(ctx)


def test_https_is_verified_and_plain_http_needs_no_certificates(
    https_stub: Stub, stub: Stub, self_signed: tuple[Path, Path]
) -> None:
    """Plain HTTP loads no CA bundle; HTTPS still verifies the server's certificate."""
    with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        run(InfluxV1Store(https_stub.url, "energy"), LINES)
    assert https_stub.seen == []
    run(InfluxV1Store(https_stub.url, "energy", ca_file=str(self_signed[0])), LINES)
    run(InfluxV1Store(https_stub.url, "energy", verify_tls=False), LINES)
    run(InfluxV1Store(stub.url, "energy", ca_file=str(self_signed[0])), LINES)
    assert [len(s.body) > 0 for s in https_stub.seen + stub.seen] == [True, True, True]
