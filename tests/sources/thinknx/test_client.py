"""The client and the source against a fake server at the httpx transport."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import tzlocal

from collector.config import ThinknxConfig
from collector.errors import AuthError, PartialFailure, PermanentError, TransientError
from collector.logs import RedactingFormatter
from collector.model import Reading
from collector.sources.thinknx.source import ThinknxSource
from tests.sources.thinknx.fake import KEY, PASSWORD, USERNAME, VERSION, FakeServer, json_body
from tests.test_schema import check_follows_schema

OBJECTS = [
    {"guid": "T1", "kind": "thermostat", "name": "Living", "room": "Ground"},
    {"guid": "H1", "kind": "hvac", "name": "Split"},
    {"guid": "L1", "kind": "light", "name": "Lamp"},
    {"guid": "D1", "kind": "dimmer", "name": "Spots"},
    {"guid": "B1", "kind": "blind", "name": "Shutter"},
    {"guid": "A1", "kind": "analog", "name": "Meter", "quantity": "power", "unit": "kW"},
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def config(mode: str, objects: list[dict[str, str]] | None = None, **extra: Any) -> ThinknxConfig:
    head: dict[str, Any] = {"name": "villa"}
    if mode == "cloud":
        head |= {"cloud_key": KEY, "cloud_url": "https://cloud.test"}
    else:
        head |= {"url": "http://192.168.1.10:5051", "auth": mode, "username": USERNAME,
                 "password": PASSWORD}
    listed = OBJECTS if objects is None else objects
    # the fake server's clock is on UTC unless a test says otherwise
    return ThinknxConfig.model_validate(head | {"objects": listed, "timezone": "UTC"} | extra)


def source(server: FakeServer, cfg: ThinknxConfig, clock: Clock | None = None) -> ThinknxSource:
    clock = clock or Clock()
    http = httpx.AsyncClient(transport=server.transport(), timeout=5)
    return ThinknxSource(cfg, http, clock=clock, sleep=clock.sleep)


def poll(src: ThinknxSource, times: int = 1) -> list[Sequence[Reading] | Exception]:
    async def go() -> list[Sequence[Reading] | Exception]:
        out: list[Sequence[Reading] | Exception] = []
        try:
            for _ in range(times):
                try:
                    out.append(await src.poll())
                except Exception as err:  # the test looks at it
                    out.append(err)
        finally:
            await src.aclose()
            await src._http.aclose()
        return out

    return asyncio.run(go())


def values(readings: Sequence[Reading]) -> dict[tuple[str, str, str | None, str | None], Any]:
    return {(r.device_id, r.measurement, r.tag("kind"), r.tag("name")): (r.value, r.label)
            for r in readings}


EXPECTED = {
    ("T1", "temperature_c", None, None): (21.5, None),
    ("T1", "setpoint_c", "target", None): (20.5, None),
    ("T1", "state", None, "temp_mode"): (1.0, "comfort"),
    ("T1", "state", None, "chrono"): (0.0, "disabled"),
    ("H1", "state", None, "on_off"): (1.0, "on"),
    ("H1", "setpoint_c", "target", None): (24.0, None),
    ("H1", "state", None, "hvac_mode"): (4.0, "auto"),
    ("H1", "state", None, "fan_speed"): (2.0, "average"),
    ("L1", "state", None, "switch"): (1.0, "on"),
    ("D1", "state", None, "switch"): (1.0, "on"),
    ("D1", "level_pct", "dimmer", None): (40.0, None),
    ("B1", "level_pct", "blind", None): (75.0, None),
    ("B1", "level_pct", "slats", None): (10.0, None),
    ("A1", "power_w", None, None): (1500.0, None),
    ("server:192.168.1.10", "uptime_s", "process", None): (86400 + 7200 + 180.0, None),
    ("server:192.168.1.10", "uptime_s", "server", None): (9 * 86400 + 300.0, None),
    ("server:192.168.1.10", "clients", None, None): (2.0, None),
    ("server:192.168.1.10", "pbx_users", None, None): (1.0, None),
    ("server:192.168.1.10", "config_time_s", None, None): (1717236000.0, None),
}


@pytest.mark.parametrize("mode", ["basic", "digest", "params"])
def test_local_auth_modes_collect_every_kind(mode: str) -> None:
    server = FakeServer(mode)
    [got] = poll(source(server, config(mode)))
    assert not isinstance(got, Exception), got
    assert values(got) == EXPECTED
    assert all(r.source == "thinknx" and r.site == "villa" for r in got)
    assert {r.device for r in got if r.device_id == "T1"} == {"Living"}
    assert {r.tag("room") for r in got if r.device_id == "T1"} == {"Ground"}
    assert {r.tag("model") for r in got if r.device_id == "A1"} == {"analog"}
    for request in server.requests:
        assert request.url.host == "192.168.1.10" and request.url.port == 5051
        assert request.url.path.startswith("/api/V1/")
    statuses = [r for r in server.requests if r.url.path == "/api/V1/actualtemp"]
    assert statuses[-1].url.params["guid"] == "T1"
    if mode == "params":
        assert statuses[0].url.params["user"] == USERNAME
        assert statuses[0].url.params["pass"] == PASSWORD
        assert "authorization" not in statuses[0].headers
    elif mode == "basic":
        decoded = base64.b64decode(statuses[0].headers["authorization"][6:]).decode()
        assert decoded == f"{USERNAME}:{PASSWORD}"
        assert "pass" not in statuses[0].url.params
    else:
        assert server.challenges == 1  # answered once, then reused by every request
        assert PASSWORD not in str(statuses[-1].headers) + str(statuses[-1].url)


def test_cloud_path_carries_the_key_and_no_credentials() -> None:
    server = FakeServer("cloud")
    [got] = poll(source(server, config("cloud")))
    assert not isinstance(got, Exception), got
    assert values(got)[("server:cloud", "clients", None, None)] == (2.0, None)
    assert len(got) == len(EXPECTED)
    for request in server.requests:
        assert request.url.host == "cloud.test"
        assert request.url.path.startswith(f"/{KEY}/api/V1/")
        assert "auth" not in request.url.params and "authorization" not in request.headers


ERRORS = [
    (400, b"", PermanentError, "HTTP 400"),
    (404, json_body({"error": "device not found"}), PermanentError, "device not found"),
    (400, json_body({"error": "params errors"}), PermanentError, "params errors"),
    (400, json_body({"error": "impossible to execute"}), TransientError, "impossible to execute"),
    (500, b"oops", TransientError, "HTTP 500"),
    (503, b"", TransientError, "HTTP 503"),
    (200, b"<html>busy</html>", PermanentError, "not JSON"),
    (301, b"", PermanentError, "redirects (HTTP 301)"),
    (200, json_body({"error": "device not found"}), PermanentError, "device not found"),
]


@pytest.mark.parametrize(("status", "body", "error", "text"), ERRORS)
def test_one_failing_object_is_a_partial_failure_naming_it(
        status: int, body: bytes, error: type[Exception], text: str) -> None:
    server = FakeServer("basic", errors={"L1": (status, body)})
    src = source(server, config("basic"))
    [got] = poll(src)
    assert isinstance(got, PartialFailure)
    assert len(got.errors) == 1
    message = got.errors[0]
    assert message.startswith("object:L1: ") and "light 'Lamp' (guid L1)" in message
    assert text in message
    assert isinstance(src.problems["object:L1"], error)
    kept = values(got.readings)  # type: ignore[arg-type]
    assert kept == {k: v for k, v in EXPECTED.items() if k[0] != "L1"}


def test_403_is_an_auth_error_and_the_password_is_not_asked_again_at_once() -> None:
    server = FakeServer("basic", password="something else")
    clock = Clock()
    src = source(server, config("basic"), clock)

    async def go() -> list[object]:
        seen: list[object] = []
        for advance in (0.0, 30.0, 31.0, 60.0, 61.0):
            clock.now += advance
            before = len(server.requests)
            try:
                await src.poll()
            except AuthError as err:
                seen.append((type(err).__name__, len(server.requests) - before))
        await src.aclose()
        await src._http.aclose()
        return seen

    # asked at 0; blocked at 30; asked at 61 (60 s); blocked at 121; asked at 182 (120 s)
    got = asyncio.run(go())
    assert [n for _, n in got] == [1, 0, 1, 0, 1]
    assert "403" in str(src.problems["server"])


def test_429_waits_retry_after_then_answers() -> None:
    server = FakeServer("cloud", retry_after=["7", "not a number"])
    clock = Clock()
    [got] = poll(source(server, config("cloud", objects=OBJECTS[:1]), clock))
    assert not isinstance(got, Exception), got
    assert clock.slept == [7.0, 1.0]  # Retry-After, then the default for a date
    assert len(got) == 4 + 5  # the thermostat's and the server's


def test_429_without_end_is_a_transient_error_with_the_hint() -> None:
    server = FakeServer("cloud", retry_after=["2"] * 10)
    clock = Clock()
    [got] = poll(source(server, config("cloud", objects=[]), clock))
    assert isinstance(got, TransientError) and got.retry_after == 2.0
    assert clock.slept == [2.0, 2.0, 2.0]


def test_concurrency_is_bounded_by_max_concurrency() -> None:
    objects = [{"guid": f"D{i}", "kind": "dimmer", "name": f"d{i}"} for i in range(40)]
    server = FakeServer("params", delay=True)
    [got] = poll(source(server, config("params", objects=objects, max_concurrency=5)))
    assert not isinstance(got, Exception), got
    assert len(got) == 40 * 2 + 5  # on/off and level of each, and the server's
    assert server.max_in_flight == 5


def test_own_http_client_pool_equals_max_concurrency() -> None:
    src = ThinknxSource(config("basic", max_concurrency=3))
    pool = src._http._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 3
    asyncio.run(src.aclose())


def test_check_describes_the_server_without_secrets() -> None:
    server = FakeServer("cloud")
    src = source(server, config("cloud"))

    async def go() -> str:
        try:
            return await src.check()
        finally:
            await src.aclose()
            await src._http.aclose()

    text = asyncio.run(go())
    assert text == f"Thinknx {VERSION} (cloud), 6 objects"


@pytest.mark.parametrize("mode", ["params", "cloud", "digest"])
def test_secrets_never_in_logs_or_errors(mode: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        good = poll(source(FakeServer(mode), config(mode)))
        bad = poll(source(FakeServer(mode, password="other", errors={
            "L1": (500, b""), "T1": (404, json_body({"error": "device not found"}))}),
            config(mode) if mode != "cloud" else config("cloud", cloud_url="https://x.test")))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = stream.getvalue() + repr(good) + repr(bad) + str(bad[0])
    assert "HTTP Request" in text  # httpx did log the URLs
    encoded = str(httpx.QueryParams({"pass": PASSWORD}))[5:]
    for secret in (PASSWORD, encoded, KEY):
        assert secret not in text


def test_a_long_retry_after_is_left_to_the_scheduler() -> None:
    server = FakeServer("cloud", retry_after=["600"])
    clock = Clock()
    [got] = poll(source(server, config("cloud", objects=[]), clock))
    assert isinstance(got, TransientError) and got.retry_after == 600.0
    assert clock.slept == [] and len(server.requests) == 1


def test_params_mode_warns_once_that_the_password_travels_in_the_url(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    cfg = config("params").model_copy(update={"name": "params-warning"})
    for _ in range(3):
        asyncio.run(ThinknxSource(cfg).aclose())
    warnings = [r.getMessage() for r in caplog.records if "in the URL" in r.getMessage()]
    assert warnings == ['thinknx params-warning: auth = "params" sends the password in the URL '
                        "of every request (plain HTTP on the local network only)"]
    assert PASSWORD not in caplog.text


def config_time(cfg: ThinknxConfig) -> float:
    [got] = poll(source(FakeServer("basic"), cfg))
    assert not isinstance(got, Exception), got
    [stamp] = [r.value for r in got if r.measurement == "config_time_s"]
    return stamp


@pytest.fixture
def machine_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    tzlocal.reload_localzone()
    yield
    monkeypatch.undo()
    tzlocal.reload_localzone()


def test_config_time_in_the_configured_zone() -> None:
    # the fake server says "10:00:00 2024-06-01": 08:00 UTC in Rome (summer time, +2)
    assert config_time(config("basic", timezone="Europe/Rome")) == 1717228800.0
    assert config_time(config("basic", timezone="UTC")) == 1717236000.0


def test_config_time_defaults_to_this_machines_zone(machine_in_new_york: None) -> None:
    # 10:00 in New York in June (-4) is 14:00 UTC
    assert config_time(config("basic", timezone=None)) == 1717250400.0


def test_every_reading_follows_the_schema() -> None:
    level = {"guid": "A2", "kind": "analog", "name": "Tank", "quantity": "level", "unit": "%"}
    [got] = poll(source(FakeServer("basic"), config("basic", objects=[*OBJECTS, level])))
    assert not isinstance(got, Exception), got
    seen = check_follows_schema(got)
    assert {"level_pct", "pbx_users", "state:switch", "config_time_s"} <= seen
    assert values(got)[("A2", "level_pct", "level", None)] == (1.5, None)
