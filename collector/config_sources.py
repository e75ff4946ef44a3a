"""The config sections of the sources ([[fritzbox]], [[thinknx]], [[overkiz]]), the
duration type and the strict base every section shares; the file, the store sections and the
loader are in collector/config.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_HINT = 'expected a duration such as "60s", "5m", "1h" or a number of seconds'

_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """'60s', '5m', '1.5h', '7d' or a number of seconds -> seconds (float > 0)."""
    if isinstance(value, bool):
        raise ValueError(f"{_DURATION_HINT}, got {str(value).lower()}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"{_DURATION_HINT}, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be greater than zero, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SourceConfig(_Section):
    name: str = Field(min_length=1)
    interval: Duration = 60.0
    timeout: Duration = 10.0
    enabled: bool = True
    #: This site's room names -> the house's (collector/pipeline/rooms.py, docs/rooms.md).
    room_aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator("room_aliases")
    @classmethod
    def _aliases(cls, value: dict[str, str]) -> dict[str, str]:
        _no_blank(value)
        for alias, room in value.items():
            if room in value and value[room] != room:
                raise ValueError(
                    f"{alias!r} = {room!r}, but {room!r} is itself an alias (of "
                    f"{value[room]!r}): give every alias its final room")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if re.search(r"[\s,=\\]", value):
            raise ValueError(
                f"{value!r} is not allowed: the name becomes the site tag, so it may not "
                "contain spaces, commas, '=' or backslashes"
            )
        return value


def _no_blank(value: dict[str, str]) -> dict[str, str]:
    for key, room in value.items():
        if not key.strip() or not room.strip():
            raise ValueError(f"{key!r} = {room!r}: device, alias and room names may not be "
                             "empty")
    return value


class FritzboxConfig(_SourceConfig):
    url: str = "https://fritz.box"
    username: str = Field(min_length=1)
    password: SecretStr
    stats_interval: Duration = 1800.0
    voip: bool = True
    timezone: str | None = None
    tr064_url: str | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    voip_numbers_as_tags: bool = False
    #: AIN or device name -> room (the AHA interface has no rooms).
    rooms: dict[str, str] = Field(default_factory=dict)

    @field_validator("rooms")
    @classmethod
    def _rooms(cls, value: dict[str, str]) -> dict[str, str]:
        return _no_blank(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise ValueError(f"unknown time zone {value!r} (e.g. \"Europe/Berlin\")") from err
        return value


class ThinknxObject(_Section):
    guid: str = Field(min_length=1)
    kind: Literal["thermostat", "hvac", "light", "dimmer", "blind", "analog"]
    name: str | None = None
    room: str | None = None
    quantity: str | None = None
    unit: str | None = None

    @model_validator(mode="after")
    def _analog(self) -> ThinknxObject:
        from collector import normalise

        if self.kind != "analog":
            if self.quantity is not None or self.unit is not None:
                raise ValueError(f"object {self.guid!r}: quantity and unit are for analog "
                                 "objects only")
            return self
        if self.quantity is None or self.unit is None:
            raise ValueError(f"analog object {self.guid!r} needs both quantity and unit")
        try:
            measurement = normalise.measurement_for(self.quantity)
        except normalise.UnitError as err:
            raise ValueError(f"object {self.guid!r}: {err}") from None
        rule = normalise.UNITS.get(self.unit.strip())
        fitting = sorted(u for u, r in normalise.UNITS.items()
                         if measurement.endswith("_" + _SUFFIX.get(r.unit, r.unit)))
        if rule is None or self.unit.strip() not in fitting:
            raise ValueError(f"object {self.guid!r}: unit {self.unit!r} is not a unit of "
                             f"{self.quantity} (known: {', '.join(fitting)})")
        return self


def _zone_name(value: str | None) -> str | None:
    """An IANA zone name as given; an unknown one is a ValueError naming it."""
    if value is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (e.g. \"Europe/Rome\")") from err
    return value


#: Schema unit -> the suffix of the measurement names measured in it.
_SUFFIX = {"°C": "c", "%": "pct", "W": "w", "Wh": "wh", "V": "v", "lx": "lx", "ppm": "ppm"}
#: Private LAN ranges (RFC 1918, RFC 4193) where ``auth = "params"`` may be used.
_LAN_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
#: The Thinknx cloud service ("Cloud based integration").
THINKNX_CLOUD_URL = "https://data.thinknx.eu"


class ThinknxConfig(_SourceConfig):
    url: str | None = None
    cloud_key: SecretStr | None = None
    cloud_url: str = THINKNX_CLOUD_URL
    auth: Literal["digest", "basic", "params"] = "digest"
    username: str | None = None
    password: SecretStr | None = None
    objects: list[ThinknxObject] = Field(default_factory=list)
    max_concurrency: int = Field(default=8, gt=0, le=64)
    verify_tls: bool = True
    ca_file: Path | None = None
    #: The zone of the server's clock (``config_time`` carries none); default: this machine's.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _zone_name(value)

    @model_validator(mode="after")
    def _mode(self) -> ThinknxConfig:
        import ipaddress
        from urllib.parse import urlsplit

        if (self.url is None) == (self.cloud_key is None):
            raise ValueError("set exactly one of url (local server) and cloud_key (cloud)")
        if urlsplit(self.cloud_url).scheme not in ("http", "https"):
            raise ValueError(f"cloud_url {self.cloud_url!r} is not an https:// address")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url {self.url!r} is not an http:// or https:// address")
            if not self.username or self.password is None:
                raise ValueError("a local server (url) needs username and password")
            if self.auth == "params":
                try:
                    address = ipaddress.ip_address(parts.hostname)
                    lan = address.is_loopback or address.is_link_local or any(
                        address in ipaddress.ip_network(net) for net in _LAN_NETS
                        if ipaddress.ip_network(net).version == address.version)
                except ValueError:
                    lan = parts.hostname == "localhost"
                if parts.scheme != "http" or not lan:
                    raise ValueError(
                        'auth = "params" puts the password into the URL: only allowed over '
                        "plain http:// to a loopback or private LAN address, got "
                        f"{parts.scheme}://{parts.hostname}")
        guids: set[str] = set()
        for obj in self.objects:
            if obj.guid in guids:
                raise ValueError(f"two objects have the guid {obj.guid!r}")
            guids.add(obj.guid)
        return self


#: Named Overkiz cloud servers (host names of the end-user API per vendor and region).
OVERKIZ_SERVERS: dict[str, str] = {
    "somfy_europe": "https://ha101-1.overkiz.com",
    "somfy_north_america": "https://ha401-1.overkiz.com",
    "somfy_oceania": "https://ha201-1.overkiz.com",
    "atlantic_cozytouch": "https://ha110-1.overkiz.com",
}


class OverkizConfig(_SourceConfig):
    server: str | None = None
    url: str | None = None
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    history: bool = True
    #: `collector run` heals gaps from the cloud history at most this far back (days; 0: off;
    #: collector/pipeline/heal.py).
    heal_days: float = Field(default=7.0, ge=0, le=365)
    verify_tls: bool = True
    ca_file: Path | None = None
    # interval: the full per-device state read (what events do not carry) and the running
    # day's and month's energy; live changes come from the event listener every
    # events_interval.
    interval: Duration = 300.0
    events_interval: Duration = 1.0
    timezone: str | None = None

    @model_validator(mode="after")
    def _access(self) -> OverkizConfig:
        from urllib.parse import urlsplit
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if (self.server is None) == (self.url is None):
            raise ValueError("give either server (a named cloud) or url, not both or neither")
        if self.server is not None and self.server not in OVERKIZ_SERVERS:
            raise ValueError(f"server {self.server!r} is unknown; "
                             f"known: {', '.join(OVERKIZ_SERVERS)}")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"url {self.url!r} must be an http(s) address")
        # Two modes: the cloud (server or url, with username/password: POST /login) and the
        # gateway's local API (url with a bearer token). The spec documents no bearer token
        # for the cloud, so a token always means the local API.
        if self.token is not None and self.server is not None:
            raise ValueError(
                "token is for the gateway's local API (url = the gateway); a named cloud "
                "server logs in with username and password"
            )
        if self.token is not None and (self.username or self.password is not None):
            raise ValueError(
                "give token (the gateway's local API) or username and password (cloud), "
                "not both"
            )
        if self.token is None and (not self.username or self.password is None):
            raise ValueError("give username and password, or a token")
        if self.events_interval < 1.0:
            raise ValueError("events_interval must be at least 1 s (the server's limit)")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise ValueError(f"unknown time zone {self.timezone!r}") from err
        return self
