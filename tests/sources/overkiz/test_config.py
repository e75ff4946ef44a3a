"""The [[overkiz]] section: cloud or local access, checked with the offending key named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from collector.config import OverkizConfig


def test_cloud_defaults() -> None:
    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")
    assert (config.events_interval, config.interval) == (1.0, 300.0)
    assert config.verify_tls is True


def test_local_api() -> None:
    config = OverkizConfig(name="gw", url="https://gateway-1234.local:8443", token="t")
    assert config.token is not None and config.token.get_secret_value() == "t"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "u", "password": "p"}, "either server"),
        ({"server": "somfy_europe", "url": "https://h", "username": "u", "password": "p"},
         "either server"),
        ({"server": "somfy_mars", "username": "u", "password": "p"}, "somfy_mars"),
        ({"url": "ftp://h", "username": "u", "password": "p"}, "http"),
        ({"server": "somfy_europe", "username": "u"}, "username and password, or a token"),
        ({"server": "somfy_europe", "token": "t"}, "token is for the gateway's local API"),
        ({"server": "somfy_europe", "username": "u", "password": "p", "token": "t"},
         "token is for the gateway's local API"),
        ({"url": "https://gw.local:8443", "username": "u", "password": "p", "token": "t"},
         "not both"),
        ({"server": "somfy_europe", "username": "u", "password": "p", "events_interval": 0.5},
         "events_interval"),
        ({"server": "somfy_europe", "username": "u", "password": "p", "timezone": "Mars/Base"},
         "Mars/Base"),
    ],
)
def test_invalid(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OverkizConfig(name="home", **fields)
