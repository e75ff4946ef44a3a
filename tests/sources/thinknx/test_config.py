"""``[[thinknx]]`` checks: local XOR cloud, params only on the LAN, analog units, guids."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import parse_config
from collector.errors import ConfigError

LOCAL = '[[thinknx]]\nname = "villa"\nurl = "{url}"\nauth = "{auth}"\nusername = "u"\n' \
        'password = "pw"\n'
CLOUD = '[[thinknx]]\nname = "villa"\ncloud_key = "abcdefgh"\n'
THERMOSTAT = '[[thinknx.objects]]\nguid = "{guid}"\nkind = "thermostat"\n'


def load(text: str) -> object:
    return parse_config(text, Path("collector.toml"), env={})


def error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return str(caught.value)


def test_local_and_cloud_are_accepted() -> None:
    config = load(LOCAL.format(url="http://10.0.0.5:5051", auth="digest")
                  + THERMOSTAT.format(guid="a"))
    tc = config.thinknx[0]  # type: ignore[attr-defined]
    assert (tc.url, tc.auth, tc.max_concurrency, tc.cloud_url) == (
        "http://10.0.0.5:5051", "digest", 8, "https://data.thinknx.eu")
    cloud = load(CLOUD).thinknx[0]  # type: ignore[attr-defined]
    assert cloud.cloud_key.get_secret_value() == "abcdefgh" and cloud.url is None


def test_url_xor_cloud_key() -> None:
    both = LOCAL.format(url="http://10.0.0.5:5051", auth="basic") + 'cloud_key = "abcdefgh"\n'
    for text in (both, '[[thinknx]]\nname = "villa"\n'):
        message = error(text)
        assert "thinknx[0]" in message and "url" in message and "cloud_key" in message


def test_local_needs_username_and_password() -> None:
    message = error('[[thinknx]]\nname = "villa"\nurl = "http://10.0.0.5:5051"\n')
    assert "username and password" in message


@pytest.mark.parametrize("url", ["http://192.168.1.10:5051", "http://127.0.0.1:5051",
                                 "http://localhost:5051", "http://10.1.2.3"])
def test_params_on_the_lan(url: str) -> None:
    assert load(LOCAL.format(url=url, auth="params")).thinknx[0].auth == "params"  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["https://192.168.1.10:5051", "http://203.0.113.7:5051",
                                 "http://thinknx.example.com:5051"])
def test_params_refused_elsewhere(url: str) -> None:
    message = error(LOCAL.format(url=url, auth="params"))
    assert 'auth = "params"' in message and "pw" not in message.replace("password", "")


@pytest.mark.parametrize(("extra", "expected"), [
    ('quantity = "power"\n', "needs both quantity and unit"),
    ('quantity = "speed"\nunit = "km/h"\n', "unknown quantity 'speed' (known: "),
    ('quantity = "power"\nunit = "kWh"\n', "unit 'kWh' is not a unit of power (known: "),
    ('quantity = "energy"\nunit = "parsecs"\n', "(known: MWh, Wh, kWh)"),
])
def test_analog_quantity_and_unit(extra: str, expected: str) -> None:
    text = (CLOUD + '[[thinknx.objects]]\nguid = "m1"\nkind = "analog"\n' + extra)
    message = error(text)
    assert expected in message and "m1" in message


def test_analog_accepted_and_units_only_for_analog() -> None:
    ok = load(CLOUD + '[[thinknx.objects]]\nguid = "m1"\nkind = "analog"\nquantity = "power"\n'
              'unit = "kW"\n')
    assert ok.thinknx[0].objects[0].unit == "kW"  # type: ignore[attr-defined]
    message = error(CLOUD + THERMOSTAT.format(guid="t1") + 'unit = "kW"\n')
    assert "analog objects only" in message


def test_guids_are_unique() -> None:
    message = error(CLOUD + THERMOSTAT.format(guid="same") + THERMOSTAT.format(guid="same"))
    assert "'same'" in message


def test_timezone_of_the_server_clock() -> None:
    assert load(CLOUD).thinknx[0].timezone is None  # type: ignore[attr-defined]
    rome = load(CLOUD + 'timezone = "Europe/Rome"\n')
    assert rome.thinknx[0].timezone == "Europe/Rome"  # type: ignore[attr-defined]
    message = error(CLOUD + 'timezone = "Europe/Roma"\n')
    assert "thinknx[0]" in message and "timezone" in message and "'Europe/Roma'" in message
