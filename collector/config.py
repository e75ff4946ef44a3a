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
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from collector.config_sources import (
    Duration,
    FritzboxConfig,
    OverkizConfig,
    ThinknxConfig,
    _Section,
)
from collector.errors import ConfigError

__all__ = [
    "Config",
    "FritzboxConfig",
    "InfluxConfig",
    "LogConfig",
    "OverkizConfig",
    "SpoolConfig",
    "StoreConfig",
    "ThinknxConfig",
    "load_config",
    "parse_config",
    "resolve_path",
]

DEFAULT_PATH = Path("collector.toml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

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
    #: How long raw points are kept (``collector store setup`` applies it); None: all.
    raw_retention: Duration | None = None

    @field_validator("raw_retention")
    @classmethod
    def _a_day_at_least(cls, value: float | None) -> float | None:
        if value is not None and value < 86400:
            raise ValueError("must be at least 1d (the rollups are computed from raw data up "
                             "to 3 hours old, and late data may come later from the spool); "
                             "leave it out to keep all raw data")
        return value

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
