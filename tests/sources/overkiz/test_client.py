"""The Overkiz client at the transport: login, session renewal, back-off, limits, local API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.errors import ConfigError, ParseError
from collector.sources.overkiz.client import (
    CLOUD_PATH,
    LOCAL_PATH,
    OverkizClient,
    api_base,
    device_segment,
)
from collector.sources.overkiz.errors import (
    OverkizBadCredentials,
    OverkizListenerLost,
    OverkizRateLimited,
)
from collector.sources.overkiz.limits import Category, RateLimiter

FIXTURES = Path(__file__).parents[2] / "fixtures" / "overkiz"
BASE = "https://ha101-1.overkiz.com" + CLOUD_PATH


def body(endpoint: str, case: str) -> bytes:
    return (FIXTURES / endpoint / f"{case}.json").read_bytes()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Server:
    """Answers like the cloud: a session cookie, then "Not authenticated" once it expired."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.sessions = 0
        self.password_ok = True
        self.expire_next = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path.removeprefix(CLOUD_PATH)
        if path == "/login":
            if not self.password_ok:
                return httpx.Response(401, content=body("login", "bad-credentials"))
            self.sessions += 1
            return httpx.Response(
                200,
                json={"success": True, "roles": [{"name": "ENDUSER"}]},
                headers={"Set-Cookie": f"JSESSIONID=S{self.sessions}; Path=/; Secure; HttpOnly"},
            )
        if request.headers.get("cookie") != f"JSESSIONID=S{self.sessions}" or self.expire_next:
            self.expire_next = False
            return httpx.Response(401, content=body("errors", "not-authenticated"))
        if path == "/events/register":
            return httpx.Response(200, json={"id": "listener-1"})
        if path.startswith("/events/"):
            return httpx.Response(400, content=body("errors", "no-registered-event-listener"))
        return httpx.Response(200, json=[])


def make(server: Any, clock: Clock | None = None, **kw: Any) -> OverkizClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return OverkizClient(
        BASE,
        http,
        RateLimiter(None, clock=clock or Clock()),
        username="user@example.tld",
        password="s3cret-pass",
        clock=clock or Clock(),
        **kw,
    )


def test_api_base_adds_the_path_once() -> None:
    assert api_base("https://h:8443", local=False) == "https://h:8443" + CLOUD_PATH
    assert api_base("https://h:8443/", local=True) == "https://h:8443" + LOCAL_PATH
    assert api_base("http://127.0.0.1:9000" + CLOUD_PATH, local=False) == (
        "http://127.0.0.1:9000" + CLOUD_PATH
    )
    with pytest.raises(ConfigError, match="ftp://h"):
        api_base("ftp://h", local=False)


def test_device_url_is_one_segment() -> None:
    segment = device_segment("io://1234-5678-9012/5541257#1")
    assert segment == "io%3A%2F%2F1234-5678-9012%2F5541257%231"


def test_login_form_and_cookie_then_relogin_once() -> None:
    server = Server()
    client = make(server)

    async def run() -> None:
        assert await client.request("GET", "/setup/devices") == []
        server.expire_next = True
        assert await client.request("GET", "/setup/devices") == []

    asyncio.run(run())
    login = server.seen[0]
    assert login.method == "POST" and login.url.path == CLOUD_PATH + "/login"
    assert dict(httpx.QueryParams(login.content.decode())) == {
        "userId": "user@example.tld",
        "userPassword": "s3cret-pass",
    }
    paths = [r.url.path.removeprefix(CLOUD_PATH) for r in server.seen]
    assert paths == ["/login", "/setup/devices", "/setup/devices", "/login", "/setup/devices"]
    assert client.requests == 5


def test_bad_credentials_are_not_retried_until_the_backoff_passed() -> None:
    server = Server()
    server.password_ok = False
    clock = Clock()
    client = make(server, clock)

    async def attempt() -> None:
        await client.request("GET", "/setup")

    with pytest.raises(OverkizBadCredentials) as first:
        asyncio.run(attempt())
    assert "s3cret-pass" not in str(first.value)
    clock.now += 299.0
    with pytest.raises(OverkizBadCredentials, match="not retrying"):
        asyncio.run(attempt())
    assert len(server.seen) == 1
    clock.now += 2.0
    with pytest.raises(OverkizBadCredentials):
        asyncio.run(attempt())
    assert len(server.seen) == 2
    # doubled: 600 s now
    clock.now += 599.0
    with pytest.raises(OverkizBadCredentials, match="not retrying"):
        asyncio.run(attempt())
    assert len(server.seen) == 2


def test_rate_limited_call_is_not_sent() -> None:
    server = Server()
    client = make(server)

    async def run() -> None:
        await client.request("GET", "/setup", category=Category.BULK_LOAD)
        with pytest.raises(OverkizRateLimited) as info:
            await client.request("GET", "/setup", category=Category.BULK_LOAD)
        assert info.value.retry_after == 86_400.0

    asyncio.run(run())
    paths = [r.url.path.removeprefix(CLOUD_PATH) for r in server.seen]
    assert paths == ["/login", "/setup"]


def test_short_wait_is_slept_not_skipped() -> None:
    server = Server()
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    client = make(server, clock, sleep=sleep)

    async def run() -> None:
        lid = (await client.request("POST", "/events/register"))["id"]
        clock.now += 0.4
        with pytest.raises(OverkizListenerLost):
            await client.request("POST", f"/events/{lid}/fetch", category=Category.POLLING)
        clock.now += 0.4
        with pytest.raises(OverkizListenerLost):
            await client.request("POST", f"/events/{lid}/fetch", category=Category.POLLING)

    asyncio.run(run())
    assert slept == [pytest.approx(0.6)]


def test_local_api_uses_the_bearer_token_and_never_logs_in() -> None:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps({"id": "l1"}).encode())

    http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    base = api_base("https://gateway-1234-5678-9012.local:8443", local=True)
    client = OverkizClient(base, http, RateLimiter(None), token="tok-123", local=True)
    assert asyncio.run(client.request("POST", "/events/register")) == {"id": "l1"}
    assert [str(r.url) for r in seen] == [
        "https://gateway-1234-5678-9012.local:8443/enduser-mobile-web/1/enduserAPI/events/register"
    ]
    assert seen[0].headers["authorization"] == "Bearer tok-123"
    assert "cookie" not in seen[0].headers


def test_the_setup_load_is_written_for_the_next_process_only_once_answered(
        tmp_path: Path) -> None:  # fmt: skip
    """A /setup whose answer is unreadable binds only this process; an answered one is
    written to the limit file for the next."""
    path = tmp_path / "limits.json"
    answers = [httpx.Response(200, content=b"<html>maintenance</html>"),
               httpx.Response(200, json={"devices": []})]

    def gateway(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/setup")
        return answers.pop(0)

    async def go() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
        first = OverkizClient(BASE, http, RateLimiter(path), token="tok", local=True)
        with pytest.raises(ParseError):
            await first.request("GET", "/setup", category=Category.BULK_LOAD)
        assert not path.exists()
        second = OverkizClient(BASE, http, RateLimiter(path), token="tok", local=True)
        assert await second.request("GET", "/setup", category=Category.BULK_LOAD) == {
            "devices": []}
        assert RateLimiter(path).wait_s(Category.BULK_LOAD) > 86_000
        await http.aclose()

    asyncio.run(go())
