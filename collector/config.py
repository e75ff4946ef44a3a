"""Configuration: a TOML file, ``${VAR}`` taken from the environment, validated by pydantic.

Every user error becomes one ``ConfigError`` whose message names the file, the key and
what is allowed; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from collector.errors import ConfigError

DEFAULT_PATH = Path("collector.toml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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


class StoreConfig(_Section):
    kind: Literal["sqlite", "influxdb"] = "sqlite"
    path: Path = Path("data/collector.sqlite3")


class InfluxConfig(_Section):
    url: str = "http://localhost:8086"
    api: Literal["v1", "v2"] = "v2"
    # v2
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    # v1
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout: Duration = 10.0
    verify_tls: bool = True
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _needs(self) -> InfluxConfig:
        if self.api == "v2":
            missing = [k for k in ("org", "bucket", "token") if getattr(self, k) is None]
            if missing:
                raise ValueError(f'api = "v2" needs {", ".join(missing)}')
        elif self.database is None:
            raise ValueError('api = "v1" needs database')
        return self


class SpoolConfig(_Section):
    path: Path = Path("data/spool.sqlite3")
    max_lines: int = Field(default=5_000_000, gt=0)
    batch_lines: int = Field(default=5_000, gt=0, le=100_000)
    flush_interval: Duration = 2.0
    max_backoff: Duration = 300.0


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class _SourceConfig(_Section):
    name: str = Field(min_length=1)
    interval: Duration = 60.0
    timeout: Duration = 10.0
    enabled: bool = True
    #: This site's room names -> the house's (collector/rooms.py, docs/rooms.md).
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


class OverkizConfig(_SourceConfig):
    server: str | None = None
    url: str | None = None
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    history: bool = True
    #: `collector run` heals gaps from the cloud history at most this far back (days; 0: off;
    #: collector/heal.py).
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

        from collector.sources.overkiz.client import SERVERS

        if (self.server is None) == (self.url is None):
            raise ValueError("give either server (a named cloud) or url, not both or neither")
        if self.server is not None and self.server not in SERVERS:
            raise ValueError(f"server {self.server!r} is unknown; known: {', '.join(SERVERS)}")
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


class Config(_Section):
    store: StoreConfig = StoreConfig()
    influxdb: InfluxConfig | None = None
    spool: SpoolConfig = SpoolConfig()
    log: LogConfig = LogConfig()
    fritzbox: list[FritzboxConfig] = Field(default_factory=list)
    thinknx: list[ThinknxConfig] = Field(default_factory=list)
    overkiz: list[OverkizConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.store.kind == "influxdb" and self.influxdb is None:
            raise ValueError('store.kind = "influxdb" needs an [influxdb] section')
        names: set[tuple[str, str]] = set()
        for kind in ("fritzbox", "thinknx", "overkiz"):
            for section in getattr(self, kind):
                if (kind, section.name) in names:
                    raise ValueError(f"two [[{kind}]] sections are both named {section.name!r}")
                names.add((kind, section.name))
        return self

    def secrets(self) -> list[str]:
        """Every secret value in this config, for log redaction."""
        found: list[str] = []

        def walk(obj: object) -> None:
            if isinstance(obj, SecretStr):
                found.append(obj.get_secret_value())
            elif isinstance(obj, BaseModel):
                for name in type(obj).model_fields:
                    walk(getattr(obj, name))
            elif isinstance(obj, list):
                for item in obj:
                    walk(item)

        walk(self)
        return [s for s in found if s]


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("COLLECTOR_CONFIG")
    return Path(env) if env else DEFAULT_PATH


def _substitute(obj: Any, where: str, file: Path, env: dict[str, str]) -> Any:
    if isinstance(obj, str):

        def repl(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in env:
                raise ConfigError(
                    f"{file}: {where or 'value'}: environment variable {var} is not set "
                    f"(the value refers to ${{{var}}})"
                )
            return env[var]

        return _VAR.sub(repl, obj)
    if isinstance(obj, dict):
        return {
            k: _substitute(v, f"{where}.{k}" if where else k, file, env) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_substitute(v, f"{where}[{i}]", file, env) for i, v in enumerate(obj)]
    return obj


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(err: ValidationError, file: Path) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _loc(loc)
        kind = e["type"]
        msg = e["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            msg = f"unknown key; allowed here: {', '.join(allowed)}" if allowed else "unknown key"
        elif kind == "literal_error":
            msg = msg.replace("Input should be", "allowed values are")
        elif kind == "missing":
            msg = "required key is missing"
        elif kind in ("model_type", "model_attributes_type", "dict_type", "list_type"):
            header = ".".join(str(p) for p in loc if isinstance(p, str))
            if kind == "list_type" and _allowed_keys(loc):
                expected = f"an array of tables ([[{header}]] sections)"
            elif kind == "list_type":
                expected = "an array"
            else:
                brackets = "[[{}]]" if loc and isinstance(loc[-1], int) else "[{}]"
                expected = "a table (" + brackets.format(header) + ")"
            msg = f"expected {expected}, got {_toml_type(e['input'])}"
        elif kind in _EXPECTED:
            # never the value itself: it may be a password
            msg = f"expected {_EXPECTED[kind]}, got {_toml_type(e['input'])}"
        else:
            msg = msg.replace("Input should be", "must be")
        lines.append(f"{file}: {key}: {msg}")
    return "\n".join(lines)


_EXPECTED = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string in quotes",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "path_type": "a path in quotes",
}


def _toml_type(value: object) -> str:
    """The TOML kind of a value, for messages that must not echo the value."""
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        ((dt.datetime, dt.date, dt.time), "a date/time"),
    )
    for types, name in kinds:
        if isinstance(value, types):
            return name
    return type(value).__name__


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        inner = _model_of(field.annotation)
        if inner is None:
            return []
        model = inner
    return sorted(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def parse_config(text: str, file: Path, env: dict[str, str] | None = None) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: not valid TOML: {err}") from err
    raw = _substitute(raw, "", file, dict(os.environ) if env is None else env)
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, file)) from None


def load_config(path: str | os.PathLike[str] | None = None, *, missing_ok: bool = True) -> Config:
    """Load the config file; with ``missing_ok`` a missing default file means defaults."""
    file = resolve_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok and path is None and "COLLECTOR_CONFIG" not in os.environ:
            return Config()
        raise ConfigError(f"{file}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file}: cannot read config file: {err}") from None
    return parse_config(text, file)
