"""The InfluxDB v2 store against a loopback server that checks the documented request shape."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Iterator

import pytest

from collector.errors import (
    StoreAuthError,
    StoreError,
    StoreRejected,
    StoreTooLarge,
    StoreUnavailable,
)
from collector.stores.influx_v2 import InfluxV2Store
from tests.fake_influx2 import FakeInflux2, running_fake_influx2

TOKEN = "tok-Zq81xPw9-very-secret"

LINES = [
    "power_w,device=Plug\\ 1,device_id=116570012345,site=home,source=fritzbox value=12.34 "
    "1700000000000000000",
    "temperature_c,device=Living\\,room,device_id=09995,room=Living\\ room,site=home,"
    "source=fritzbox value=21.5 1700000000000000000",
    "state,device=HKR,device_id=09995,name=mode,site=home,source=fritzbox value=0.0,"
    'label="off \\"manual\\"" 1700000060000000000',
]


@pytest.fixture
def fake() -> Iterator[FakeInflux2]:
    with running_fake_influx2(token=TOKEN, org="home", bucket="energy") as server:
        yield server


def make_store(fake: FakeInflux2, **kw: object) -> InfluxV2Store:
    args: dict[str, object] = {
        "url": fake.url,
        "org": "home",
        "bucket": "energy",
        "token": TOKEN,
        "timeout": 5.0,
    }
    args.update(kw)
    return InfluxV2Store(**args)  # type: ignore[arg-type]


def write(store: InfluxV2Store, lines: list[str]) -> None:
    async def go() -> None:
        try:
            await store.write(lines)
        finally:
            await store.aclose()

    asyncio.run(go())


def write_error(store: InfluxV2Store, lines: list[str]) -> StoreError:
    with pytest.raises(StoreError) as info:
        write(store, lines)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    return info.value


def check(store: InfluxV2Store) -> str:
    async def go() -> str:
        try:
            return await store.check()
        finally:
            await store.aclose()

    return asyncio.run(go())


def test_write_sends_the_exact_lines_gzipped_with_token(fake: FakeInflux2) -> None:
    write(make_store(fake), LINES)
    assert fake.violations == []
    assert fake.lines == LINES
    [req] = fake.requests
    assert req.method == "POST"
    assert req.path == "/api/v2/write"
    assert req.query == {"org": ["home"], "bucket": ["energy"], "precision": ["ns"]}
    assert req.headers["authorization"] == f"Token {TOKEN}"
    assert req.headers["content-encoding"] == "gzip"
    assert req.headers["content-type"].startswith("text/plain")
    assert gzip.decompress(req.body).decode() == "\n".join(LINES)


def test_empty_batch_sends_nothing(fake: FakeInflux2) -> None:
    write(make_store(fake), [])
    assert fake.requests == []


def test_trailing_slash_in_url(fake: FakeInflux2) -> None:
    write(make_store(fake, url=fake.url + "/"), LINES[:1])
    assert fake.violations == []
    assert fake.lines == LINES[:1]


def test_400_is_rejected_with_the_server_message(fake: FakeInflux2) -> None:
    msg = "partial write error (2 written): unable to parse 'bad line': missing fields"
    fake.answer_next(400, msg)
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreRejected)
    assert err.status == 400
    assert str(err) == msg
    assert fake.violations == []


def test_malformed_line_is_rejected_by_server(fake: FakeInflux2) -> None:
    err = write_error(make_store(fake), [LINES[0], "no_fields_here 1700000000000000000"])
    assert isinstance(err, StoreRejected)
    assert err.status == 400
    assert str(err).startswith("unable to parse 'no_fields_here 1700000000000000000'")
    assert fake.lines == []


def test_422_is_rejected_with_the_server_message(fake: FakeInflux2) -> None:
    msg = (
        "failure writing points to database: partial write: points beyond retention "
        "policy dropped=1"
    )
    fake.answer_next(422, msg)
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreRejected)
    assert err.status == 422
    assert str(err) == msg


def test_400_with_a_plain_text_body(fake: FakeInflux2) -> None:
    fake.answer_next(400, raw_body=b"line 2: bad timestamp")
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreRejected)
    assert str(err) == "line 2: bad timestamp"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_answers(fake: FakeInflux2, status: int) -> None:
    fake.answer_next(status, "insufficient permissions for write")
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreAuthError)
    assert f"(HTTP {status}): insufficient permissions for write" in str(err)


def test_wrong_token_is_an_auth_error_without_the_token(fake: FakeInflux2) -> None:
    wrong = "wrong-token-abc123"
    with pytest.raises(StoreAuthError) as info:
        write(make_store(fake, token=wrong), LINES)
    assert wrong not in str(info.value)
    assert TOKEN not in str(info.value)
    assert str(info.value) == (
        f"InfluxDB at {fake.url} refused the credentials (HTTP 401): unauthorized access"
    )
    assert fake.lines == []


def test_413_is_too_large(fake: FakeInflux2) -> None:
    fake.answer_next(413, "unable to read data: points batch is too large")
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreTooLarge)
    assert "points batch is too large" in str(err)


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "30", 30.0),
        (429, "1.5", 1.5),
        (429, None, None),
        (503, "7", 7.0),
        (503, None, None),
        (500, None, None),
        (502, "2", 2.0),
    ],
)
def test_transient_answers(
    fake: FakeInflux2, status: int, retry_after: str | None, expected: float | None
) -> None:
    fake.answer_next(status, "come back later", retry_after=retry_after)
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreUnavailable)
    assert err.retry_after == expected
    assert "come back later" in str(err)
    assert fake.lines == []


def test_retry_after_http_date(fake: FakeInflux2) -> None:
    fake.answer_next(503, "maintenance", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    err = write_error(make_store(fake), LINES)
    assert isinstance(err, StoreUnavailable)
    assert err.retry_after == 0.0  # a date in the past: retry now


def test_no_hidden_retries(fake: FakeInflux2) -> None:
    """One failed write is exactly one request: the spool does the retrying."""
    fake.answer_next(503, "down", retry_after="1")
    write_error(make_store(fake), LINES)
    assert len(fake.requests) == 1
    fake.answer_next(429, "slow down", retry_after="1")
    write_error(make_store(fake), LINES)
    assert len(fake.requests) == 2


def test_missing_bucket_keeps_the_lines(fake: FakeInflux2) -> None:
    err = write_error(make_store(fake, bucket="nope"), LINES)
    assert isinstance(err, StoreUnavailable)
    assert str(err) == (
        f'InfluxDB at {fake.url}: bucket "nope" not found '
        "(org 'home', bucket 'nope'; create it or fix the config)"
    )


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = InfluxV2Store(f"http://127.0.0.1:{port}", "home", "energy", TOKEN, timeout=5.0)
    with pytest.raises(StoreUnavailable) as info:
        write(store, LINES)
    assert str(info.value).startswith(f"InfluxDB at http://127.0.0.1:{port}: write failed: ")
    assert TOKEN not in str(info.value)


def test_timeout_is_unavailable() -> None:
    """A server that accepts the connection and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        store = InfluxV2Store(f"http://127.0.0.1:{port}", "home", "energy", TOKEN, timeout=0.3)
        with pytest.raises(StoreUnavailable) as info:
            write(store, LINES)
    assert str(info.value) == f"InfluxDB at http://127.0.0.1:{port}: write timed out"


def test_check_writes_nothing(fake: FakeInflux2) -> None:
    text = check(make_store(fake))
    assert text == f"InfluxDB at {fake.url}: bucket 'energy' of org 'home' writable"
    assert fake.lines == []
    assert fake.violations == []
    [req] = fake.requests
    assert req.body == b""
    assert req.headers["authorization"] == f"Token {TOKEN}"


def test_check_wrong_token(fake: FakeInflux2) -> None:
    with pytest.raises(StoreAuthError) as info:
        check(make_store(fake, token="not-the-token"))
    assert "not-the-token" not in str(info.value)
    assert str(info.value) == (
        f"InfluxDB at {fake.url} refused the credentials (HTTP 401): unauthorized access"
    )


def test_check_missing_bucket(fake: FakeInflux2) -> None:
    with pytest.raises(StoreUnavailable) as info:
        check(make_store(fake, bucket="other"))
    assert "bucket 'other'" in str(info.value)


def test_check_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreUnavailable):
        check(InfluxV2Store(f"http://127.0.0.1:{port}", "home", "energy", TOKEN))


def test_repr_and_name_hide_the_token(fake: FakeInflux2) -> None:
    store = make_store(fake)
    assert TOKEN not in repr(store)
    assert TOKEN not in store.name
    assert repr(store) == f"InfluxV2Store(url={fake.url!r}, org='home', bucket='energy')"
    asyncio.run(store.aclose())
