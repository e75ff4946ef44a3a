"""FritzboxClient against a fake box behind httpx.MockTransport.

The fake computes the expected login responses itself (straight from AVM's description,
not through the client's own functions), so a wrong hash fails the login.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest

from collector import logs
from collector.config import FritzboxConfig
from collector.errors import AuthError, ConfigError, ParseError, PermanentError, TransientError
from collector.sources.fritzbox.client import (
    MAX_BODY_BYTES,
    NO_SID,
    FritzboxClient,
    fetch_capped,
    md5_response,
    parse_session_info,
    pbkdf2_response,
    tls_verify,
)

T = TypeVar("T")

PASSWORD = "s3cret-Pässwort"
USERNAME = "collector"
PBKDF2_CHALLENGE = "2$120$0a1b2c3d$80$4e5f6a7b8c9d"
MD5_CHALLENGE = "1234567z"


def run(coro: Awaitable[T]) -> T:
    async def go() -> T:
        return await coro

    return asyncio.run(go())


def make_config(**overrides: Any) -> FritzboxConfig:
    values: dict[str, Any] = {
        "name": "home",
        "url": "http://fritz.test",
        "username": USERNAME,
        "password": PASSWORD,
        "timeout": 5,
    }
    values.update(overrides)
    return FritzboxConfig.model_validate(values)


def expected_response(challenge: str, password: str) -> str:
    """AVM's rules, written out independently of the client."""
    if challenge.startswith("2$"):
        _, i1, s1, i2, s2 = challenge.split("$")
        first = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(s1), int(i1))
        second = hashlib.pbkdf2_hmac("sha256", first, bytes.fromhex(s2), int(i2))
        return s2 + "$" + second.hex()
    text = challenge + "-" + password
    return challenge + "-" + hashlib.md5(text.encode("utf-16-le")).hexdigest()


def session_xml(sid: str, *, challenge: str = "", block: int = 0, rights: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><SessionInfo>'
        f"<SID>{sid}</SID><Challenge>{challenge}</Challenge><BlockTime>{block}</BlockTime>"
        f'<Rights>{rights}</Rights><Users><User last="1">{USERNAME}</User></Users>'
        "</SessionInfo>"
    ).encode()


DEVICELIST = b'<devicelist version="1" fwversion="8.02"></devicelist>'
RIGHTS = "<Name>Dial</Name><Access>2</Access><Name>HomeAuto</Name><Access>2</Access>"


class FakeBox:
    """The login and AHA endpoints of a FRITZ!Box, with the failures we need."""

    def __init__(
        self,
        *,
        password: str = PASSWORD,
        challenge: str = PBKDF2_CHALLENGE,
        block_time: int = 0,
        expired_style: str = "403",
    ) -> None:
        self.password = password
        self.challenge = challenge
        self.block_time = block_time
        self.failed_login_block = 4
        self.expired_style = expired_style  # "403" or "sid0"
        self.sessions: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.login_posts: list[dict[str, str]] = []
        self.logins = 0
        self.logouts: list[str] = []
        self.forbidden = False  # 403 even with a valid session (missing right)
        self.rights = RIGHTS  # what a session's SessionInfo lists
        self.statuses: dict[str, int] = {}  # ain -> HTTP status of getbasicdevicestats
        self.next_status: list[int] = []
        self.devicelist = DEVICELIST
        self.stats_bodies: dict[str, bytes] = {}  # ain -> getbasicdevicestats answer
        self._counter = 0

    @property
    def aha_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("/homeautoswitch.lua")]

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/login_sid.lua"):
            return self._login(request)
        if request.url.path.endswith("/webservices/homeautoswitch.lua"):
            return self._aha(request)
        return httpx.Response(404, text="not found")

    def _login(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params.get("version") != "2":
            return httpx.Response(400)
        if params.get("logout") == "1":
            sid = params.get("sid", "")
            self.logouts.append(sid)
            self.sessions.discard(sid)
            return httpx.Response(200, content=session_xml(NO_SID, challenge=self.challenge))
        if request.method == "POST":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.login_posts.append(form)
            if form.get("username") == USERNAME and form.get("response") == expected_response(
                self.challenge, self.password
            ):
                self._counter += 1
                sid = f"{self._counter:016x}"
                self.sessions.add(sid)
                self.logins += 1
                return httpx.Response(200, content=session_xml(sid, rights=self.rights))
            return httpx.Response(
                200,
                content=session_xml(
                    NO_SID, challenge=self.challenge, block=self.failed_login_block
                ),
            )
        return httpx.Response(
            200, content=session_xml(NO_SID, challenge=self.challenge, block=self.block_time)
        )

    def _aha(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params.get("sid") not in self.sessions:
            if self.expired_style == "sid0":
                return httpx.Response(200, content=session_xml(NO_SID, challenge="abc"))
            return httpx.Response(403, text="Forbidden")
        if self.forbidden:
            return httpx.Response(403, text="Forbidden")
        if self.next_status:
            return httpx.Response(self.next_status.pop(0), text="error")
        cmd = params.get("switchcmd")
        if cmd == "getdevicelistinfos":
            return httpx.Response(200, content=self.devicelist)
        if cmd == "getbasicdevicestats":
            ain = params.get("ain", "")
            status = self.statuses.get(ain, 200)
            if status != 200:
                return httpx.Response(status, text="error")
            body = self.stats_bodies.get(ain, f"<devicestats ain='{ain}'/>".encode())
            return httpx.Response(200, content=body)
        return httpx.Response(400, text="bad switchcmd")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(
    box: FakeBox,
    config: FritzboxConfig | None = None,
    *,
    clock: Callable[[], float] | None = None,
    sleep: Sleeps | None = None,
) -> FritzboxClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(box.handler))
    return FritzboxClient(
        config or make_config(),
        http,
        clock=clock or FakeClock(),
        sleep=sleep or Sleeps(),
    )


async def closing(client: FritzboxClient, body: Callable[[FritzboxClient], Awaitable[T]]) -> T:
    try:
        return await body(client)
    finally:
        await client.aclose()
        await client._http.aclose()


# --- the login responses ---------------------------------------------------------------------


def test_pbkdf2_response_matches_avms_published_example() -> None:
    # Example of AVM's technical note "Session-IDs im FRITZ!Box Webinterface".
    assert pbkdf2_response("2$10000$5A1711$2000$5A1722", "1example!") == (
        "5A1722$1798a1672bca7c6463d6b245f82b53703b0f50813401b03e4045a5861e689adb"
    )


def test_md5_response_matches_avms_published_example() -> None:
    assert md5_response("1234567z", "äbc") == "1234567z-9e224a41eeefa284df7bb0f26c2913e2"


def test_md5_replaces_characters_above_latin1_with_a_dot() -> None:
    expected = "1234567z-" + hashlib.md5("1234567z-a.b".encode("utf-16-le")).hexdigest()
    assert md5_response("1234567z", "a€b") == expected


def test_pbkdf2_response_of_the_captured_challenge(shared_dir: Path) -> None:
    body = (shared_dir / "fixtures/fritzbox/login-challenge-pbkdf2.xml").read_bytes()
    info = parse_session_info(body)
    assert info.sid == NO_SID
    assert info.block_time_s == 0
    assert not info.valid
    assert info.challenge.startswith("2$10000$")
    response = pbkdf2_response(info.challenge, "1example!")
    assert response == expected_response(info.challenge, "1example!")
    salt2, digest = response.split("$")
    assert salt2 == info.challenge.split("$")[4]
    assert len(digest) == 64


def test_session_info_rights_and_malformed_answers() -> None:
    info = parse_session_info(session_xml("00000000000000ab", rights=RIGHTS))
    assert info.valid
    assert info.rights == (("Dial", 2), ("HomeAuto", 2))
    with pytest.raises(ParseError, match="malformed XML"):
        parse_session_info(b"<SessionInfo><SID>")
    with pytest.raises(ParseError, match="SessionInfo"):
        parse_session_info(b"<html>login</html>")
    with pytest.raises(ParseError, match="document type"):
        parse_session_info(b'<!DOCTYPE x [<!ENTITY a "b">]><SessionInfo/>')


# --- sessions --------------------------------------------------------------------------------


def test_pbkdf2_login_once_and_the_sid_is_reused() -> None:
    box = FakeBox()

    async def body(client: FritzboxClient) -> list[bytes]:
        return [await client.get_devicelist() for _ in range(5)]

    answers = run(closing(make_client(box), body))
    assert answers == [DEVICELIST] * 5
    assert box.logins == 1
    assert box.login_posts == [
        {"username": USERNAME, "response": expected_response(PBKDF2_CHALLENGE, PASSWORD)}
    ]
    assert {r.url.params["sid"] for r in box.aha_requests} == {"0000000000000001"}
    assert [r.url.params["switchcmd"] for r in box.aha_requests] == ["getdevicelistinfos"] * 5


def test_the_session_id_is_masked_in_log_lines() -> None:
    box = FakeBox()
    box._counter = 0x5EC2E7  # the next session id is 00000000005ec2e8
    sid = "00000000005ec2e8"
    assert sid not in logs._secrets
    run(closing(make_client(box), lambda c: c.get_devicelist()))
    assert {r.url.params["sid"] for r in box.aha_requests} == {sid}
    assert logs.redact(f"the box ended session {sid} early") == (
        "the box ended session *** early"
    )


def test_md5_login_for_old_firmware() -> None:
    box = FakeBox(challenge=MD5_CHALLENGE)
    client = make_client(box)
    run(closing(client, lambda c: c.get_devicestats("087610000434")))
    assert box.logins == 1
    assert box.login_posts[0]["response"] == expected_response(MD5_CHALLENGE, PASSWORD)
    assert box.aha_requests[0].url.params["ain"] == "087610000434"
    assert box.aha_requests[0].url.params["switchcmd"] == "getbasicdevicestats"


def test_the_password_never_travels_in_clear() -> None:
    box = FakeBox()
    run(closing(make_client(box), lambda c: c.get_devicelist()))
    for request in box.requests:
        assert PASSWORD not in str(request.url)
        assert PASSWORD.encode() not in request.content


@pytest.mark.parametrize("style", ["403", "sid0"])
def test_session_renewed_once_when_the_box_ends_it(style: str) -> None:
    box = FakeBox(expired_style=style)

    async def body(client: FritzboxClient) -> bytes:
        await client.get_devicelist()
        box.expire_sessions()
        return await client.get_devicelist()

    assert run(closing(make_client(box), body)) == DEVICELIST
    assert box.logins == 2
    assert [r.url.params["sid"] for r in box.aha_requests] == [
        "0000000000000001",
        "0000000000000001",
        "0000000000000002",
    ]


def test_concurrent_requests_on_an_ended_session_log_in_only_once() -> None:
    box = FakeBox()

    async def body(client: FritzboxClient) -> list[bytes]:
        await client.get_devicelist()
        box.expire_sessions()
        return list(await asyncio.gather(*(client.get_devicestats(f"ain{i}") for i in range(6))))

    answers = run(closing(make_client(box), body))
    assert len(answers) == 6
    assert box.logins == 2


def test_no_probe_of_the_session_before_use() -> None:
    box = FakeBox()
    run(closing(make_client(box), lambda c: c.get_devicelist()))
    login_gets = [r for r in box.requests if r.url.path == "/login_sid.lua" and r.method == "GET"]
    # One challenge and one logout; never "is this sid still valid?".
    assert [dict(r.url.params) for r in login_gets] == [
        {"version": "2"},
        {"version": "2", "logout": "1", "sid": "0000000000000001"},
    ]


def test_logout_on_close() -> None:
    box = FakeBox()
    client = make_client(box)
    run(closing(client, lambda c: c.get_devicelist()))
    assert box.logouts == ["0000000000000001"]
    assert box.sessions == set()
    assert not client.logged_in


def test_close_without_a_session_sends_nothing() -> None:
    box = FakeBox()
    run(closing(make_client(box), lambda c: asyncio.sleep(0)))
    assert box.requests == []


def test_missing_right_is_an_auth_error_and_not_retried_within_the_backoff() -> None:
    box = FakeBox()
    box.forbidden = True
    box.rights = "<Name>Dial</Name><Access>2</Access>"
    clock = FakeClock()
    client = make_client(box, clock=clock)

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(AuthError, match="lacks the Smart Home right") as first:
            await c.get_devicelist()
        assert "(session rights: Dial=2)" in str(first.value)
        before = len(box.requests)
        clock.now += 59
        with pytest.raises(AuthError):
            await c.get_devicelist()
        assert len(box.requests) == before

    run(closing(client, body))
    assert box.logins == 2  # the first login and one renewal, no more


def test_a_box_ending_sessions_that_carry_the_right_is_not_called_a_missing_right() -> None:
    box = FakeBox()
    box.forbidden = True  # the sessions list HomeAuto=2, yet every request is refused

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(AuthError) as refused:
            await c.get_devicelist()
        text = str(refused.value)
        assert "ends our sessions although they carry the Smart Home right" in text
        assert "lacks" not in text
        assert "HomeAuto=2" in text

    run(closing(make_client(box), body))


def test_concurrent_refusals_start_one_back_off_period() -> None:
    box = FakeBox()
    box.forbidden = True
    clock = FakeClock()

    async def body(c: FritzboxClient) -> None:
        results = await asyncio.gather(
            *(c.get_devicestats(f"ain{i}") for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, AuthError) for r in results)
        box.forbidden = False
        clock.now += 60  # one 60 s period, not doubled by each concurrent refusal
        assert await c.get_devicelist() == DEVICELIST

    run(closing(make_client(box, clock=clock), body))


# --- BlockTime and wrong passwords ------------------------------------------------------------


def test_block_time_is_waited_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    box = FakeBox(block_time=5)
    sleeps = Sleeps()
    caplog.set_level(logging.INFO, logger="collector")
    run(closing(make_client(box, sleep=sleeps), lambda c: c.get_devicelist()))
    assert sleeps.calls == [5.0]
    assert box.logins == 1
    assert "the box blocks logins for 5 s" in caplog.text


def test_a_long_block_time_fails_with_its_duration() -> None:
    box = FakeBox(block_time=120)
    sleeps = Sleeps()

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(TransientError, match="for another 120 s") as info:
            await c.get_devicelist()
        assert info.value.retry_after == 120.0

    run(closing(make_client(box, sleep=sleeps), body))
    assert sleeps.calls == []
    assert box.login_posts == []


def test_wrong_password_one_auth_error_then_back_off(caplog: pytest.LogCaptureFixture) -> None:
    box = FakeBox(password="the-right-one")
    clock = FakeClock()
    client = make_client(box, clock=clock)
    caplog.set_level(logging.DEBUG, logger="collector")

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(AuthError) as first:
            await c.get_devicelist()
        message = str(first.value)
        assert message == (
            "FRITZ!Box home: login: user 'collector' was refused (wrong user name or "
            "password); the box blocks further logins for 4 s"
        )
        assert len(box.login_posts) == 1
        seen = len(box.requests)
        for step in (0, 30, 29.9):  # up to 59.9 s later: no contact at all
            clock.now += step
            with pytest.raises(AuthError) as again:
                await c.get_devicestats("x")
            assert str(again.value) == message
        assert len(box.requests) == seen
        clock.now += 0.1  # 60 s: ask once more, refused again
        with pytest.raises(AuthError):
            await c.get_devicelist()
        assert len(box.login_posts) == 2
        clock.now += 119  # the back-off doubled to 120 s
        with pytest.raises(AuthError):
            await c.get_devicelist()
        assert len(box.login_posts) == 2
        clock.now += 1
        box.password = PASSWORD  # the owner fixed it
        assert await c.get_devicelist() == DEVICELIST

    run(closing(client, body))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per refusal, none for the calls held back
    assert "not trying again for 60 s" in warnings[0].getMessage()
    assert "not trying again for 120 s" in warnings[1].getMessage()


def test_secrets_never_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    box = FakeBox()
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []

    async def body(c: FritzboxClient) -> None:
        await c.get_devicelist()
        box.expire_sessions()
        await c.get_devicelist()
        box.next_status = [500, 400]
        for _ in range(2):
            try:
                await c.get_devicelist()
            except (TransientError, PermanentError) as err:
                errors.append(str(err))
        box.forbidden = True
        try:
            await c.get_devicelist()
        except AuthError as err:
            errors.append(str(err))

    run(closing(make_client(box), body))
    assert len(errors) == 3
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("collector"))
    assert "logged in as collector (PBKDF2)" in ours
    for secret in (PASSWORD, "0000000000000001", "0000000000000002"):
        assert secret not in ours
        assert all(secret not in e for e in errors)


# --- status codes and transport ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (400, PermanentError, "malformed (HTTP 400)"),
        (404, PermanentError, "no Smart Home interface"),
        (500, TransientError, "internal error of the box (HTTP 500)"),
        (502, TransientError, "HTTP 502"),
        (418, PermanentError, "unexpected HTTP 418"),
    ],
)
def test_aha_status_codes(status: int, error: type[Exception], text: str) -> None:
    box = FakeBox()
    box.statuses["087610000434"] = status

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(error, match=re.escape(text)) as info:
            await c.get_devicestats("087610000434")
        assert "getbasicdevicestats ain=087610000434" in str(info.value)
        if error is PermanentError:
            assert not isinstance(info.value, TransientError)

    run(closing(make_client(box), body))
    assert box.logins == 1


def test_500_is_transient_not_a_session_renewal() -> None:
    box = FakeBox()
    box.next_status = [500]

    async def body(c: FritzboxClient) -> bytes:
        with pytest.raises(TransientError):
            await c.get_devicelist()
        return await c.get_devicelist()

    assert run(closing(make_client(box), body)) == DEVICELIST
    assert box.logins == 1


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (httpx.ConnectError("connection refused"), "ConnectError: connection refused"),
        (httpx.ReadTimeout("timed out"), "no answer within the timeout (ReadTimeout)"),
    ],
)
def test_network_errors_are_transient(exc: Exception, text: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = FritzboxClient(make_config(), http)

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(TransientError) as info:
            await c.get_devicelist()
        assert str(info.value) == f"FRITZ!Box home: login: {text}"

    run(closing(client, body))


def test_login_page_status_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host == "busy.test" else 404)

    async def attempt(url: str) -> Exception:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = FritzboxClient(make_config(url=url), http)
        try:
            await client.get_devicelist()
        except (TransientError, PermanentError) as err:
            return err
        finally:
            await client.aclose()
            await http.aclose()
        raise AssertionError("no error")

    assert isinstance(run(attempt("http://busy.test")), TransientError)
    err = run(attempt("http://other.test"))
    assert isinstance(err, PermanentError)
    assert "login_sid.lua answered HTTP 404" in str(err)


def test_a_huge_answer_is_refused() -> None:
    box = FakeBox()
    box.devicelist = b"<devicelist>" + b" " * MAX_BODY_BYTES + b"</devicelist>"

    async def body(c: FritzboxClient) -> None:
        with pytest.raises(ParseError, match="exceeds 10485760 bytes"):
            await c.get_devicelist()

    run(closing(make_client(box), body))


def test_a_huge_answer_without_length_is_cut_off_while_reading() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 8

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())

    async def body() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            answer = await fetch_capped(
                http, "GET", "http://x.test/", what="t", timeout=httpx.Timeout(1), max_bytes=80
            )
            assert answer.body == b"x" * 80
            with pytest.raises(ParseError, match="t: answer exceeds 79 bytes"):
                await fetch_capped(
                    http,
                    "GET",
                    "http://x.test/",
                    what="t",
                    timeout=httpx.Timeout(1),
                    max_bytes=79,
                )

    run(body())


def test_base_url_with_path_and_trailing_slash() -> None:
    box = FakeBox()
    client = make_client(box, make_config(url="http://fritz.test/box/"))
    run(closing(client, lambda c: c.get_devicelist()))
    assert [r.url.path for r in box.requests[:3]] == [
        "/box/login_sid.lua",
        "/box/login_sid.lua",
        "/box/webservices/homeautoswitch.lua",
    ]


def test_tls_verification_is_on_and_its_trust_store_loaded_once() -> None:
    secure = tls_verify(make_config(url="https://fritz.test"))
    assert isinstance(secure, ssl.SSLContext)
    assert secure.verify_mode == ssl.CERT_REQUIRED and secure.check_hostname
    assert secure.cert_store_stats()["x509_ca"] > 0
    assert tls_verify(make_config(url="https://other.test")) is secure  # shared
    tr064_https = make_config(url="http://fritz.test", tr064_url="https://fritz.test:49443")
    assert tls_verify(tr064_https) is secure
    # Plain HTTP only: no CA bundle in memory, and still no certificate would be trusted.
    plain = tls_verify(make_config(url="http://fritz.test"))
    assert isinstance(plain, ssl.SSLContext) and plain is not secure
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert tls_verify(make_config(url="https://fritz.test", verify_tls=False)) is False


def test_own_http_client_honours_tls_settings(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match="cannot load ca_file"):
        FritzboxClient(make_config(ca_file=str(missing)))

    async def body() -> None:
        client = FritzboxClient(make_config(verify_tls=False, timeout=7))
        assert client._http.timeout == httpx.Timeout(7)
        await client.aclose()
        assert client._http.is_closed

    run(body())
