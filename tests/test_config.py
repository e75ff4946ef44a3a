"""The config loader: a full example, every kind of user error, file resolution, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.config import Config, load_config, parse_config
from collector.errors import ConfigError

ENV = {
    "INFLUX_TOKEN": "influx-tok-3141",
    "FRITZ_PASSWORD": "fritz-pw-2718",
    "THINKNX_PASSWORD": "thinknx-pw-1618",
    "THINKNX_KEY": "thinknx-key-1414",
    "OVERKIZ_PASSWORD": "overkiz-pw-1732",
    "OVERKIZ_TOKEN": "overkiz-tok-2236",
}

FULL = """
[store]
kind = "influxdb"
path = "data/collector.sqlite3"

[influxdb]
url = "http://localhost:8086"
api = "v2"
org = "home"
bucket = "energy"
token = "${INFLUX_TOKEN}"
timeout = "15s"

[spool]
path = "data/spool.sqlite3"
max_lines = 1000
batch_lines = 500
flush_interval = "500ms"
max_backoff = "5m"

[log]
level = "DEBUG"

[[fritzbox]]
name = "home"
url = "https://fritz.box"
username = "collector"
password = "${FRITZ_PASSWORD}"
interval = "60s"
stats_interval = "30m"
voip = true
timezone = "Europe/Berlin"
tr064_url = "http://fritz.box:49000"
verify_tls = false

[[fritzbox]]
name = "cottage"
username = "collector"
password = "literal-${FRITZ_PASSWORD}-suffix"
interval = 90
ca_file = "/etc/collector/fritz.pem"

[[thinknx]]
name = "villa"
url = "http://192.168.1.10:5051"
auth = "digest"
username = "service"
password = "${THINKNX_PASSWORD}"
interval = "60s"
  [[thinknx.objects]]
  guid = "1IzPszHWAEuvzxtXBMrkzWQ"
  kind = "thermostat"
  name = "Living room"
  room = "Living room"
  [[thinknx.objects]]
  guid = "2AbCdEfGhIjKlMnOpQrStU"
  kind = "analog"
  quantity = "power"
  unit = "kW"

[[thinknx]]
name = "office"
cloud_key = "${THINKNX_KEY}"
username = "service"
password = "office-${THINKNX_PASSWORD}"

[[overkiz]]
name = "tahoma"
server = "somfy_europe"
username = "me@example.com"
password = "${OVERKIZ_PASSWORD}"
interval = "5m"
history = true

[[overkiz]]
name = "gateway"
url = "https://gateway-1234-5678-9012.local:8443"
token = "${OVERKIZ_TOKEN}"
verify_tls = false
"""

FRITZ = '[[fritzbox]]\nname = "home"\nusername = "u"\npassword = "p"\n'
ALL_KEYS = "fritzbox, influxdb, log, overkiz, spool, store, thinknx"
FRITZ_KEYS = (
    "ca_file, enabled, interval, name, password, room_aliases, rooms, stats_interval, "
    "timeout, timezone, tr064_url, url, username, verify_tls, voip, voip_numbers_as_tags"
)


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    file = tmp_path / "collector.toml"
    file.write_text(text, encoding="utf-8")
    return parse_config(text, file, env=ENV if env is None else env)


def test_full_example(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, FULL)
    assert cfg.store.kind == "influxdb"
    assert cfg.store.path == Path("data/collector.sqlite3")
    assert cfg.influxdb is not None
    assert cfg.influxdb.url == "http://localhost:8086"
    assert cfg.influxdb.api == "v2"
    assert (cfg.influxdb.org, cfg.influxdb.bucket) == ("home", "energy")
    assert cfg.influxdb.token is not None
    assert cfg.influxdb.token.get_secret_value() == "influx-tok-3141"
    assert cfg.influxdb.timeout == 15.0
    assert cfg.spool.path == Path("data/spool.sqlite3")
    assert (cfg.spool.max_lines, cfg.spool.batch_lines) == (1000, 500)
    assert cfg.spool.flush_interval == 0.5
    assert cfg.spool.max_backoff == 300.0
    assert cfg.log.level == "DEBUG"

    home, cottage = cfg.fritzbox
    assert home.name == "home"
    assert home.url == "https://fritz.box"
    assert home.username == "collector"
    assert home.password.get_secret_value() == "fritz-pw-2718"
    assert home.interval == 60.0
    assert home.stats_interval == 1800.0
    assert home.voip is True
    assert home.timezone == "Europe/Berlin"
    assert home.tr064_url == "http://fritz.box:49000"
    assert home.verify_tls is False
    assert home.ca_file is None
    assert cottage.password.get_secret_value() == "literal-fritz-pw-2718-suffix"
    assert cottage.interval == 90.0
    # defaults
    assert cottage.url == "https://fritz.box"
    assert cottage.stats_interval == 1800.0
    assert cottage.voip is True
    assert cottage.verify_tls is True
    assert cottage.ca_file == Path("/etc/collector/fritz.pem")
    assert cottage.timezone is None
    assert cottage.timeout == 10.0
    assert cottage.enabled is True

    villa, office = cfg.thinknx
    assert office.url is None
    assert office.cloud_key is not None
    assert office.cloud_key.get_secret_value() == "thinknx-key-1414"
    assert villa.name == "villa"
    assert villa.url == "http://192.168.1.10:5051"
    assert villa.auth == "digest"
    assert villa.username == "service"
    assert villa.password is not None
    assert villa.password.get_secret_value() == "thinknx-pw-1618"
    assert villa.cloud_key is None
    assert villa.interval == 60.0
    thermostat, analog = villa.objects
    assert (thermostat.guid, thermostat.kind, thermostat.name, thermostat.room) == (
        "1IzPszHWAEuvzxtXBMrkzWQ", "thermostat", "Living room", "Living room"
    )
    assert (analog.kind, analog.quantity, analog.unit, analog.name) == (
        "analog", "power", "kW", None
    )

    tahoma, gateway = cfg.overkiz
    assert tahoma.name == "tahoma"
    assert tahoma.server == "somfy_europe"
    assert tahoma.username == "me@example.com"
    assert tahoma.password is not None
    assert tahoma.password.get_secret_value() == "overkiz-pw-1732"
    assert tahoma.interval == 300.0
    assert tahoma.history is True
    assert tahoma.token is None
    assert gateway.url == "https://gateway-1234-5678-9012.local:8443"
    assert gateway.token is not None
    assert gateway.token.get_secret_value() == "overkiz-tok-2236"
    assert gateway.verify_tls is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ('interval = "60s"', 60.0),
        ('interval = "5m"', 300.0),
        ('interval = "30m"', 1800.0),
        ('interval = "1.5h"', 5400.0),
        ('interval = "7d"', 604800.0),
        ('interval = "250ms"', 0.25),
        ('interval = " 2 m "', 120.0),
        ("interval = 45", 45.0),
        ("interval = 0.5", 0.5),
        ('interval = "${POLL}"', 90.0),
    ],
)
def test_durations(tmp_path: Path, text: str, seconds: float) -> None:
    cfg = load_text(tmp_path, FRITZ + text + "\n", env={"POLL": "90s"})
    assert cfg.fritzbox[0].interval == seconds


def test_secrets_returns_every_secret(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, FULL)
    assert sorted(cfg.secrets()) == sorted(
        [
            "influx-tok-3141",
            "fritz-pw-2718",
            "literal-fritz-pw-2718-suffix",
            "thinknx-pw-1618",
            "office-thinknx-pw-1618",
            "thinknx-key-1414",
            "overkiz-pw-1732",
            "overkiz-tok-2236",
        ]
    )
    for secret in cfg.secrets():
        assert secret not in repr(cfg)


def test_secrets_of_influx_v1(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        '[influxdb]\napi = "v1"\ndatabase = "energy"\nusername = "c"\npassword = "v1-pw"\n',
    )
    assert cfg.secrets() == ["v1-pw"]
    assert Config().secrets() == []


def test_dollar_without_braces_is_kept(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, '[[fritzbox]]\nname = "home"\nusername = "$USER"\npassword = "a$"\n')
    assert cfg.fritzbox[0].username == "$USER"


# --- user errors: one message naming file, key and what is allowed ----------------------

ERRORS = [
    pytest.param('[store]\nkind = "sqlite"\npth = "x"\n',
                 "store.pth: unknown key; allowed here: kind, path", id="unknown-key"),
    pytest.param('[stor]\nkind = "sqlite"\n',
                 f"stor: unknown key; allowed here: {ALL_KEYS}", id="unknown-section"),
    pytest.param(FRITZ + "voip_enabled = true\n",
                 f"fritzbox[0].voip_enabled: unknown key; allowed here: {FRITZ_KEYS}",
                 id="unknown-source-key"),
    pytest.param('[[thinknx]]\nname = "v"\n[[thinknx.objects]]\nguid = "g"\nkind = "light"\n'
                 'colour = "red"\n',
                 "thinknx[0].objects[0].colour: unknown key; allowed here: guid, kind, name, "
                 "quantity, room, unit", id="unknown-object-key"),
    pytest.param('[[fritzbox]]\nname = "home"\nusername = "u"\npassword = "${FRITZ_PASSWORD}"\n',
                 "fritzbox[0].password: environment variable FRITZ_PASSWORD is not set "
                 "(the value refers to ${FRITZ_PASSWORD})", id="missing-var"),
    pytest.param('[influxdb]\norg = "o"\nbucket = "b"\ntoken = "Bearer ${INFLUX_TOKEN}"\n',
                 "influxdb.token: environment variable INFLUX_TOKEN is not set "
                 "(the value refers to ${INFLUX_TOKEN})", id="missing-var-influx"),
    pytest.param(FRITZ + "interval = true\n",
                 'fritzbox[0].interval: expected a duration such as "60s", "5m", "1h" or a '
                 "number of seconds, got true", id="interval-bool"),
    pytest.param(FRITZ + 'stats_interval = "5 minutes"\n',
                 'fritzbox[0].stats_interval: expected a duration such as "60s", "5m", "1h" or '
                 "a number of seconds, got '5 minutes'", id="interval-words"),
    pytest.param(FRITZ + "voip = [1]\n",
                 "fritzbox[0].voip: expected true or false, got an array", id="voip-list"),
    pytest.param('[[fritzbox]]\nname = 5\nusername = "u"\npassword = "p"\n',
                 "fritzbox[0].name: expected a string in quotes, got an integer", id="name-int"),
    pytest.param('[spool]\nmax_lines = "many"\n',
                 "spool.max_lines: expected a whole number, got a string", id="int-string"),
    pytest.param(FRITZ + 'interval = "-5s"\n',
                 "fritzbox[0].interval: a duration must be greater than zero, got '-5s'",
                 id="negative-duration"),
    pytest.param("[spool]\nflush_interval = 0\n",
                 "spool.flush_interval: a duration must be greater than zero, got 0",
                 id="zero-duration"),
    pytest.param("[spool]\nmax_lines = 0\n",
                 "spool.max_lines: must be greater than 0", id="zero-lines"),
    pytest.param('[store]\nkind = "postgres"\n',
                 "store.kind: allowed values are 'sqlite' or 'influxdb'", id="store-kind"),
    pytest.param('[log]\nlevel = "verbose"\n',
                 "log.level: allowed values are 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
                 id="log-level"),
    pytest.param('[[thinknx]]\nname = "v"\n[[thinknx.objects]]\nguid = "g"\nkind = "heater"\n',
                 "thinknx[0].objects[0].kind: allowed values are 'thermostat', 'hvac', 'light', "
                 "'dimmer', 'blind' or 'analog'", id="object-kind"),
    pytest.param(FRITZ + 'timezone = "Mars/Olympus"\n',
                 "fritzbox[0].timezone: unknown time zone 'Mars/Olympus' (e.g. \"Europe/Berlin\")",
                 id="time-zone"),
    pytest.param('[influxdb]\napi = "v2"\norg = "o"\nbucket = "b"\n',
                 'influxdb: api = "v2" needs token', id="v2-without-token"),
    pytest.param('[influxdb]\napi = "v1"\n',
                 'influxdb: api = "v1" needs database', id="v1-without-database"),
    pytest.param('[store]\nkind = "influxdb"\n',
                 '(top level): store.kind = "influxdb" needs an [influxdb] section',
                 id="influxdb-without-section"),
    pytest.param(FRITZ + FRITZ,
                 "(top level): two [[fritzbox]] sections are both named 'home'",
                 id="duplicate-name"),
    pytest.param('[[fritzbox]]\nname = "home"\nusername = "u"\n',
                 "fritzbox[0].password: required key is missing", id="missing-key"),
    pytest.param('[[fritzbox]]\nname = "my box"\nusername = "u"\npassword = "p"\n',
                 "fritzbox[0].name: 'my box' is not allowed: the name becomes the site tag, so "
                 "it may not contain spaces, commas, '=' or backslashes", id="name-with-space"),
    pytest.param('[fritzbox]\nname = "home"\nusername = "u"\npassword = "p"\n',
                 "fritzbox: expected an array of tables ([[fritzbox]] sections), got a table",
                 id="single-bracket-source"),
    pytest.param('[[store]]\nkind = "sqlite"\n',
                 "store: expected a table ([store]), got an array", id="double-bracket-store"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_user_error_is_one_clear_message(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "collector.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        parse_config(text, file, env={})
    assert str(info.value) == f"{file}: {message}"


def test_wrong_type_of_a_secret_does_not_echo_it(tmp_path: Path) -> None:
    file = tmp_path / "collector.toml"
    text = '[[fritzbox]]\nname = "home"\nusername = "u"\npassword = 987654321\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, file, env={})
    assert str(info.value) == (
        f"{file}: fritzbox[0].password: expected a string in quotes, got an integer"
    )
    assert "987654321" not in str(info.value)


def test_several_errors_one_line_each(tmp_path: Path) -> None:
    file = tmp_path / "collector.toml"
    with pytest.raises(ConfigError) as info:
        parse_config('[store]\nkind = "nope"\nfoo = 1\n', file, env={})
    assert str(info.value).splitlines() == [
        f"{file}: store.kind: allowed values are 'sqlite' or 'influxdb'",
        f"{file}: store.foo: unknown key; allowed here: kind, path",
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[store\nkind = "sqlite"\n', "(at line 1, column 7)"),
        ('[store]\nkind = "sqlite"\nkind = "influxdb"\n', "(at line 3, column"),
        ('[store]\nkind = sqlite\n', "(at line 2, column"),
    ],
)
def test_invalid_toml(tmp_path: Path, text: str, where: str) -> None:
    file = tmp_path / "collector.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    message = str(info.value)
    assert message.startswith(f"{file}: not valid TOML: ")
    assert where in message
    assert "\n" not in message


# --- where the file comes from -----------------------------------------------------------


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.store.kind == "sqlite"
    assert cfg.store.path == Path("data/collector.sqlite3")
    assert cfg.influxdb is None
    assert cfg.spool.path == Path("data/spool.sqlite3")
    assert cfg.log.level == "INFO"
    assert (cfg.fritzbox, cfg.thinknx, cfg.overkiz) == ([], [], [])


def test_collector_toml_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    monkeypatch.setenv("FRITZ_PASSWORD", "from-env")
    (tmp_path / "collector.toml").write_text(
        '[[fritzbox]]\nname = "cwd"\nusername = "u"\npassword = "${FRITZ_PASSWORD}"\n'
    )
    cfg = load_config(None)
    assert [f.name for f in cfg.fritzbox] == ["cwd"]
    assert cfg.fritzbox[0].password.get_secret_value() == "from-env"


def test_collector_config_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "collector.toml").write_text('[log]\nlevel = "ERROR"\n')
    other = tmp_path / "elsewhere.toml"
    other.write_text('[log]\nlevel = "WARNING"\n')
    monkeypatch.setenv("COLLECTOR_CONFIG", str(other))
    assert load_config(None).log.level == "WARNING"
    # an explicit path beats the environment
    assert load_config(tmp_path / "collector.toml").log.level == "ERROR"


def test_collector_config_env_var_pointing_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing.toml"
    monkeypatch.setenv("COLLECTOR_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config(None)
    assert str(info.value) == f"{missing}: config file not found"


def test_explicit_missing_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: config file not found"
    with pytest.raises(ConfigError) as info:
        load_config("collector.toml")
    assert str(info.value) == "collector.toml: config file not found"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read config file: ")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[[fritzbox]]\nname = "K\xfcche"\n')
    with pytest.raises(ConfigError) as info:
        load_config(latin1)
    assert str(info.value).startswith(f"{latin1}: cannot read config file: ")


def test_deployed_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[1] / "deploy" / "collector.example.toml"
    if not example.exists():
        pytest.skip("deploy/collector.example.toml not present")
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    cfg = load_config(example)
    assert cfg.store.kind == "influxdb"
    assert [f.name for f in cfg.fritzbox] == ["home"]


# --- the CLI -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[store]\nkind = "influxdb"\n',
         '(top level): store.kind = "influxdb" needs an [influxdb] section'),
        (FRITZ + 'interval = "-1m"\n',
         "fritzbox[0].interval: a duration must be greater than zero, got '-1m'"),
        ("[store\n", "not valid TOML: "),
    ],
)
def test_cli_check_with_bad_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    (tmp_path / "bad.toml").write_text(text)
    result = CliRunner().invoke(main, ["check", "--config", "bad.toml"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"config error: bad.toml: {message}" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_cli_check_with_missing_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "--config", "absent.toml"])
    assert result.exit_code == 2
    assert result.stderr == "config error: absent.toml: config file not found\n"
    assert "Traceback" not in result.output
