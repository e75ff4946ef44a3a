from __future__ import annotations

import logging

import pytest

from collector.logs import RedactingFormatter, redact, register_secret, setup_logging


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /webservices/homeautoswitch.lua?switchcmd=x&sid=9c977765016899f8",
         "GET /webservices/homeautoswitch.lua?switchcmd=x&sid=***"),
        ("<SessionInfo><SID>9c977765016899f8</SID></SessionInfo>",
         "<SessionInfo><SID>***</SID></SessionInfo>"),
        ("Authorization: Token s3cr3t-t0ken", "Authorization: Token ***"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', '{"Authorization": "Basic ***"}'),
        ("login_sid.lua?username=me&response=abcd$ef01", "login_sid.lua?username=me&response=***"),
        ("/write?db=energy&u=admin&p=hunter22", "/write?db=energy&u=***&p=***"),
        ("nothing secret here: power_w 21.5 W", "nothing secret here: power_w 21.5 W"),
        ("InfluxDB at http://reader:pa55word@influx.lan:8086/query failed",
         "InfluxDB at http://reader:***@influx.lan:8086/query failed"),
        ("https://user@host/ and mail@example.org", "https://user@host/ and mail@example.org"),
    ],
)
def test_known_secret_shapes_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret("correct horse battery")
    register_secret("")  # ignored
    register_secret("0000000000000000")  # the "no session" SID is not a secret
    assert redact("login failed for correct horse battery!") == "login failed for ***!"
    assert redact("sid 0000000000000000") == "sid 0000000000000000"


def test_formatter_masks_arguments_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("pa55-w0rd-xyz")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1,
                               "login with %s failed", ("pa55-w0rd-xyz",), None)
    try:
        raise RuntimeError("boom pa55-w0rd-xyz")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    text = RedactingFormatter("%(message)s").format(record)
    assert "pa55-w0rd-xyz" not in text
    assert "login with *** failed" in text
    assert "boom ***" in text


def test_setup_keeps_http_libraries_quiet_even_at_debug() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging("DEBUG", ["another-secret-1"])
        assert root.level == logging.DEBUG
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("httpcore").level == logging.WARNING
        assert redact("x another-secret-1 y") == "x *** y"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
