"""Static checks of deploy/ and dashboards/provisioning: what can be verified without Docker."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import parse_config
from collector.pipeline.daemon import (
    CLOSE_S,
    DELIVERY_STOP_S,
    JOB_GRACE_S,
    SHUTDOWN_FLUSH_S,
    STOP_DEADLINE_S,
)
from collector.pipeline.inflight import CANCEL_WAIT_S, STUCK_MIN_S
from collector.pipeline.supervisor import HEALTHY_WITHIN_S, HEARTBEAT_NAME, HEARTBEAT_S

# on SIGTERM the daemon waits up to 30 s for running polls (then 5 s for the cancelled
# ones), 10 s for the batches under way to the store, flushes the spool for up to 20 s and
# closes within 5 s: 70 s, and ends itself 80 s after the signal whatever it is doing
STOP_NEEDS_S = 70.0

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DASHBOARDS = ROOT / "dashboards"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
EXAMPLE_CONFIG = DEPLOY / "collector.example.toml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "collector.service"
DATASOURCE = DASHBOARDS / "provisioning" / "datasources" / "influxdb.yml"
DASHBOARD_PROVIDER = DASHBOARDS / "provisioning" / "dashboards" / "collector.yml"

# host paths the user creates next to docker-compose.yml (documented in deploy/README.md)
USER_FILES = {"./collector.toml", ".env"}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
_COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+]).*?)?\}")
_CONFIG_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_LINE = re.compile(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _env_example_names() -> set[str]:
    return set(_ENV_LINE.findall(ENV_EXAMPLE.read_text(encoding="utf-8")))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    out = []
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol["target"])))
        else:
            parts = str(vol).split(":")
            out.append((parts[0], parts[1]))
    return out


def _is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _example_env() -> dict[str, str]:
    names = _CONFIG_VAR.findall(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return {name: f"secret-{name.lower()}" for name in names}


def _active_config_text() -> str:
    """The example config without comment lines."""
    lines = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{UNIT}: setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{UNIT}: not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _script_name() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    scripts = project["scripts"]
    assert len(scripts) == 1
    return str(next(iter(scripts)))


# --- YAML ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted([*DEPLOY.glob("*.yml"), *DEPLOY.glob("*.yaml"), *DASHBOARDS.rglob("*.yml"),
            *DASHBOARDS.rglob("*.yaml")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_yaml_parses(path: Path) -> None:
    assert isinstance(_yaml(path), dict)


def test_expected_files_exist() -> None:
    for path in (COMPOSE, ENV_EXAMPLE, EXAMPLE_CONFIG, DOCKERFILE, UNIT, DATASOURCE,
                 DASHBOARD_PROVIDER, DEPLOY / "README.md", DASHBOARDS / "README.md"):
        assert path.is_file(), path


# --- docker compose --------------------------------------------------------------------


def test_compose_has_the_three_services() -> None:
    services = _services()
    assert {"influxdb", "grafana", "collector"} <= set(services)
    assert str(services["influxdb"]["image"]).startswith("influxdb:2.7")
    assert str(services["grafana"]["image"]).startswith("grafana/grafana-oss")


def test_the_rollups_are_set_up_before_the_collector_starts() -> None:
    services = _services()
    setup = services["store-setup"]
    assert setup["command"] == ["store", "setup", "--config", "/config/collector.toml"]
    assert setup["restart"] == "no"
    assert setup["environment"] == services["collector"]["environment"]
    assert setup["depends_on"]["influxdb"]["condition"] == "service_healthy"
    depends = services["collector"]["depends_on"]
    assert depends["store-setup"]["condition"] == "service_completed_successfully"
    unit = UNIT.read_text(encoding="utf-8")
    assert ("ExecStartPre=-/opt/collector/.venv/bin/collector store setup --config "
            "/etc/collector/collector.toml") in unit


def test_compose_build_context_and_dockerfile_exist() -> None:
    build = _services()["collector"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_host_paths_exist_or_are_documented() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    named = set(_compose().get("volumes", {}) or {})
    for name, service in _services().items():
        for source, _target in _volumes(service):
            if not _is_host_path(source):
                assert source in named, f"{name}: volume {source!r} is not declared"
                continue
            if source in USER_FILES:
                assert Path(source).name in readme, f"{source} is not explained in README"
                continue
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        for env_file in service.get("env_file", []) or []:
            assert env_file in USER_FILES, f"{name}: unexpected env_file {env_file}"
    assert ".env" in readme


def test_compose_variables_are_in_env_example() -> None:
    used = set(_COMPOSE_VAR.findall(COMPOSE.read_text(encoding="utf-8")))
    assert used, "the compose file is expected to take its secrets from ${VAR}"
    missing = used - _env_example_names()
    assert not missing, f"not listed in .env.example: {sorted(missing)}"


def test_collector_service_gets_the_config_variables() -> None:
    collector = _services()["collector"]
    env = _environment(collector)
    for name in _CONFIG_VAR.findall(_active_config_text()):
        assert name in env, f"collector.example.toml uses ${{{name}}}; pass it to the service"
    assert env.get("COLLECTOR_CONFIG") == "/config/collector.toml"
    targets = dict((t, s) for s, t in _volumes(collector))
    assert targets.get("/config/collector.toml") == "./collector.toml"
    assert "/data" in targets
    depends = collector["depends_on"]
    assert depends["influxdb"]["condition"] == "service_healthy"
    assert "healthcheck" in _services()["influxdb"]
    grace = re.fullmatch(r"(\d+)s", str(collector["stop_grace_period"]))
    assert grace and int(grace.group(1)) > STOP_NEEDS_S


def test_every_example_config_variable_is_in_env_example() -> None:
    missing = set(_example_env()) - _env_example_names()
    assert not missing, f"not listed in .env.example: {sorted(missing)}"


def test_grafana_mounts_match_the_provisioning() -> None:
    grafana = _services()["grafana"]
    mounts = {Path(s).as_posix(): t for s, t in _volumes(grafana) if _is_host_path(s)}
    assert mounts.get("../dashboards/provisioning") == "/etc/grafana/provisioning"
    dashboards_dir = mounts.get("../dashboards")
    assert dashboards_dir is not None
    providers = _yaml(DASHBOARD_PROVIDER)["providers"]
    assert [p["options"]["path"] for p in providers] == [dashboards_dir]
    assert all(p["type"] == "file" for p in providers)


def test_datasource_matches_influxdb_setup() -> None:
    init = _environment(_services()["influxdb"])
    assert init["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    (source,) = _yaml(DATASOURCE)["datasources"]
    assert source["type"] == "influxdb"
    # InfluxQL on 2.x: the bucket is the database of its automatic DBRP mapping
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == init["DOCKER_INFLUXDB_INIT_BUCKET"] == "energy"
    assert source["url"] == "http://influxdb:8086"
    # the token goes in the Authorization header, from Grafana's environment, which compose
    # fills with the admin token
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    header = str(source["secureJsonData"]["httpHeaderValue1"])
    assert header.startswith("Token ${")
    assert "token" not in source["secureJsonData"]
    (token_var,) = _CONFIG_VAR.findall(header)
    grafana_env = _environment(_services()["grafana"])
    assert token_var in grafana_env
    admin_token = _COMPOSE_VAR.findall(init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"])
    assert _COMPOSE_VAR.findall(grafana_env[token_var]) == admin_token


# --- example config ----------------------------------------------------------------------


def test_example_config_parses() -> None:
    config = parse_config(EXAMPLE_CONFIG.read_text(encoding="utf-8"), EXAMPLE_CONFIG,
                          env=_example_env())
    assert config.store.kind == "influxdb"
    assert config.influxdb is not None
    init = _environment(_services()["influxdb"])
    assert config.influxdb.api == "v2"
    assert config.influxdb.org == init["DOCKER_INFLUXDB_INIT_ORG"]
    assert config.influxdb.bucket == init["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert config.influxdb.url == "http://influxdb:8086"
    assert len(config.fritzbox) == 1
    assert config.thinknx == [] and config.overkiz == []
    # every secret is a ${VAR}: the substituted values are exactly the environment's
    assert set(config.secrets()) == {v for k, v in _example_env().items()
                                     if f"${{{k}}}" in _active_config_text()}


def test_example_config_has_no_literal_secrets() -> None:
    for line in EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.lstrip("#").partition("=")
        if sep and key.strip() in {"password", "token", "cloud_key"}:
            assert _CONFIG_VAR.fullmatch(value.strip().strip('"')), line


_COMMENTED_SETTING = re.compile(r"#(?=\[|[a-z_][a-z0-9_]* = )")


def _enabled(lines: list[str]) -> list[str]:
    """``lines`` with every commented-out section header and setting enabled."""
    return [_COMMENTED_SETTING.sub("", line, count=1) if _COMMENTED_SETTING.match(line)
            else line for line in lines]


def _example_source_blocks() -> list[tuple[int, int]]:
    """(first, end) line ranges of the commented-out source sections: from a
    ``#[[thinknx]]`` or ``#[[overkiz]]`` header to the next blank line."""
    lines = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line in ("#[[thinknx]]", "#[[overkiz]]"):
            end = next((j for j in range(i, len(lines)) if not lines[j].strip()), len(lines))
            blocks.append((i, end))
    return blocks


def test_example_config_with_every_setting_enabled_is_valid() -> None:
    """Every commented-out section and setting, enabled at once, is a config the model
    accepts: each key in the example is a real key of its section (unknown keys fail)."""
    lines = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    text = "\n".join(_enabled(lines))
    config = parse_config(text, EXAMPLE_CONFIG, env=_example_env())
    # every commented setting was enabled: what remains commented is explanation ("# ...")
    assert not [line for line in text.splitlines() if re.match(r"#[^\s#]", line)]
    assert [s.name for s in config.fritzbox] == ["home"]
    assert config.fritzbox[0].tr064_url == "http://fritz.box:49000"
    assert config.fritzbox[0].verify_tls is False
    assert config.influxdb is not None and config.influxdb.database == "energy"
    villa, office = config.thinknx
    assert (villa.name, villa.url, villa.auth, villa.username) == (
        "villa", "http://192.168.1.10:5051", "digest", "service")
    assert villa.password is not None
    assert villa.password.get_secret_value() == "secret-thinknx_password"
    assert (villa.interval, villa.timeout, villa.max_concurrency) == (60.0, 10.0, 8)
    assert [(o.kind, o.room, o.quantity, o.unit) for o in villa.objects] == [
        ("thermostat", "Living room", None, None), ("analog", "Utility room", "power", "kW")]
    assert (office.name, office.url, office.cloud_url) == ("office", None,
                                                           "https://data.thinknx.eu")
    assert office.cloud_key is not None
    assert office.cloud_key.get_secret_value() == "secret-thinknx_key"
    assert [o.kind for o in office.objects] == ["hvac"]
    tahoma, gateway = config.overkiz
    assert (tahoma.name, tahoma.server, tahoma.url, tahoma.username) == (
        "tahoma", "somfy_europe", None, "me@example.com")
    assert (tahoma.events_interval, tahoma.interval, tahoma.history) == (1.0, 300.0, True)
    assert tahoma.timezone == "Europe/Paris"
    assert (gateway.name, gateway.server, gateway.history) == ("gateway", None, False)
    assert gateway.url == "https://gateway-1234-5678-9012.local:8443"
    assert gateway.token is not None
    assert gateway.token.get_secret_value() == "secret-overkiz_token"
    assert gateway.ca_file == Path("/config/overkiz-ca.pem")
    # what the example's comment calls defaults are the model's defaults
    for section in (villa, office, tahoma, gateway):
        fields = type(section).model_fields
        for key in ("interval", "timeout", "max_concurrency", "verify_tls", "enabled",
                    "cloud_url", "events_interval"):
            if key in fields:
                assert getattr(section, key) == fields[key].default, (section.name, key)


def test_example_config_sources_can_be_enabled_one_at_a_time() -> None:
    """Enabling one commented-out section, as its comment says, gives a valid config with
    exactly that section added; no source section depends on another one."""
    lines = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    blocks = _example_source_blocks()
    assert [lines[first] for first, _ in blocks] == [
        "#[[thinknx]]", "#[[thinknx]]", "#[[overkiz]]", "#[[overkiz]]"]
    names = []
    for first, end in blocks:
        text = "\n".join(lines[:first] + _enabled(lines[first:end]) + lines[end:])
        config = parse_config(text, EXAMPLE_CONFIG, env=_example_env())
        (section,) = [*config.thinknx, *config.overkiz]
        assert len(config.fritzbox) == 1
        names.append(section.name)
    assert names == ["villa", "office", "tahoma", "gateway"]


def test_compose_names_every_variable_of_the_example_config() -> None:
    """A variable of a commented-out section is ready to uncomment in the compose file."""
    compose = COMPOSE.read_text(encoding="utf-8")
    commented = set(re.findall(r"^\s*#\s*([A-Z_]+): \$\{\1:\?", compose, re.MULTILINE))
    active = set(_environment(_services()["collector"]))
    missing = set(_example_env()) - active - commented - {"INFLUX_PASSWORD"}
    assert not missing, f"not named in docker-compose.yml: {sorted(missing)}"
    assert {"THINKNX_PASSWORD", "THINKNX_KEY", "OVERKIZ_PASSWORD", "OVERKIZ_TOKEN"} <= commented


@pytest.mark.parametrize("path", [*sorted(DEPLOY.iterdir()), ROOT / "README.md",
                                  *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_is_called_unsupported(path: Path) -> None:
    text = path.read_text(encoding="utf-8").lower()
    for phrase in ("not supported yet", "not yet supported", "coming soon",
                   "config reserved", "not supported by this version"):
        assert phrase not in text, f"{path.name}: {phrase!r}"


# --- Dockerfile --------------------------------------------------------------------------


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    instr = _dockerfile_instructions()
    entry = [rest for word, rest in instr if word == "ENTRYPOINT"]
    assert entry, "no ENTRYPOINT"
    assert yaml.safe_load(entry[-1]) == [_script_name()]
    cmd = [rest for word, rest in instr if word == "CMD"]
    assert yaml.safe_load(cmd[-1]) == ["run", "--config", "/config/collector.toml"]


def test_the_stop_steps_fit_the_deadline_and_the_deadline_fits_the_supervisors() -> None:
    steps = JOB_GRACE_S + CANCEL_WAIT_S + DELIVERY_STOP_S + SHUTDOWN_FLUSH_S + CLOSE_S
    assert steps == STOP_NEEDS_S < STOP_DEADLINE_S
    unit = {k: v[-1] for k, v in _unit()["Service"].items()}
    assert int(unit["TimeoutStopSec"]) > STOP_DEADLINE_S
    grace = str(_services()["collector"]["stop_grace_period"])
    assert grace.endswith("s") and int(grace[:-1]) > STOP_DEADLINE_S


def _health_command(test: list[str]) -> list[str]:
    assert test[0] == "CMD", test  # exec form: no shell in between
    return test[1:]


def test_compose_healthcheck_asks_the_daemon_whether_it_works() -> None:
    service = _services()["collector"]
    check = service["healthcheck"]
    command = _health_command(check["test"])
    assert command == [_script_name(), "health", "--config", "/config/collector.toml"]
    # the config it reads is the one the daemon runs with, mounted where it names it
    assert ("./collector.toml", "/config/collector.toml") in _volumes(service)
    assert _environment(service)["COLLECTOR_CONFIG"] == "/config/collector.toml"
    # probed more often than a heartbeat may be missed, each probe bounded
    interval = int(str(check["interval"]).removesuffix("s"))
    timeout = int(str(check["timeout"]).removesuffix("s"))
    assert HEARTBEAT_S < HEALTHY_WITHIN_S
    assert timeout < interval <= HEALTHY_WITHIN_S
    assert int(check["retries"]) >= 1
    assert int(str(check["start_period"]).removesuffix("s")) >= HEARTBEAT_S


def test_dockerfile_basics() -> None:
    instr = _dockerfile_instructions()
    assert instr[0][0] == "FROM" and instr[0][1].startswith("python:3.11-slim")
    users = [rest for word, rest in instr if word == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert any(word == "VOLUME" and "/data" in rest for word, rest in instr)
    health = [rest for word, rest in instr if word == "HEALTHCHECK"]
    assert len(health) == 1
    command = yaml.safe_load(health[0][health[0].index("CMD ") + 4:])
    assert command == [_script_name(), "health", "--config", "/config/collector.toml"]
    # the build copies what exists in the build context (the repository root)
    for word, rest in instr:
        if word == "COPY" and "--from" not in rest:
            *sources, _dest = shlex.split(rest)
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    # the working directory holds the spool: relative config paths land in the volume
    workdirs = [rest for word, rest in instr if word == "WORKDIR"]
    assert workdirs[-1] == "/data"


# --- systemd -----------------------------------------------------------------------------


def test_systemd_unit() -> None:
    unit = _unit()
    service = {k: v[-1] for k, v in unit["Service"].items()}
    # the daemon says when it is ready and feeds the watchdog while it works (daemon.py)
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    watchdog = service["WatchdogSec"]
    assert watchdog.isdigit() and HEARTBEAT_S < int(watchdog) < STUCK_MIN_S
    # a machine without a battery-backed clock waits for NTP first
    assert "time-sync.target" in unit["Unit"]["After"][-1].split()
    assert service["ExecStart"] == (
        "/opt/collector/.venv/bin/collector run --config /etc/collector/collector.toml"
    )
    assert service["ExecStart"].split()[0].endswith("/" + _script_name())
    assert service["User"] == "collector"
    assert service["EnvironmentFile"] == "/etc/collector/env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["WorkingDirectory"] == "/var/lib/collector"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert "/var/lib/collector" in service["ReadWritePaths"].split()
    assert service["PrivateTmp"] == "true"
    assert service["ProtectHome"] == "true"
    assert service["UMask"] == "0077"
    stop = service["TimeoutStopSec"]
    assert stop.isdigit() and int(stop) > STOP_NEEDS_S
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_readme_documents_the_watchdog_the_healthcheck_and_the_clock() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    unit = {k: v[-1] for k, v in _unit()["Service"].items()}
    assert "`Type=notify`" in text
    assert f"`WatchdogSec={unit['WatchdogSec']}`" in text
    assert f"`TimeoutStopSec={unit['TimeoutStopSec']}`" in text
    assert "`collector health`" in text and f"`{HEARTBEAT_NAME}`" in text
    assert "time-sync.target" in text and "systemd-time-wait-sync" in text
    assert f"{STOP_DEADLINE_S:.0f} s after the signal" in text
    assert f"for {HEALTHY_WITHIN_S:.0f} s" in text
