"""``collector export`` as users run it: options, bad input, nothing half-written; and the
daemon never imports pandas."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.lineprotocol import encode_many
from collector.model import Reading, make_tags
from collector.schema import BY_NAME
from collector.stores.sqlite import SqliteStore
from tests.cli.test_cli import run
from tests.influxd import free_port

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    store = SqliteStore(tmp_path / "data" / "collector.sqlite3")
    store.write_sync(encode_many([
        Reading("power_w", 10.0 + i, T0 + timedelta(minutes=30 * i), "fritzbox", "home",
                "ain1", "Plug", make_tags(room="Kitchen")) for i in range(4)]
        + [Reading("temperature_c", 21.5, T0, "thinknx", "villa", "g1", "Thermostat",
                   make_tags(room="Living room"))]))
    store.close()
    (tmp_path / "collector.toml").write_text("")  # the embedded default store
    return tmp_path


def test_export_to_stdout_with_options(workdir: Path) -> None:
    result = run(["export", "--measurement", "power_w", "--measurement", "temperature_c",
                  "--room", "Kitchen", "--resample", "1h", "--tz", "Europe/Berlin"], workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("time,measurement,source,site,device_id,device,room,")
    assert [(line.split(",")[0], line.split(",")[-3]) for line in lines[1:]] == [
        ("2026-03-01T01:00:00+01:00", "10.5"), ("2026-03-01T02:00:00+01:00", "12.5")]
    assert result.stderr.strip() == "2 rows exported"


def test_export_all_wide_to_a_file(workdir: Path) -> None:
    result = run(["export", "--all", "--wide", "--out", "all.csv"], workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "all.csv").read_text().splitlines() == [
        "time,Plug (Kitchen) power_w,Thermostat (Living room) temperature_c",
        "2026-03-01T00:00:00Z,10.0,21.5",
        "2026-03-01T00:30:00Z,11.0,",
        "2026-03-01T01:00:00Z,12.0,",
        "2026-03-01T01:30:00Z,13.0,",
    ]


def test_an_unknown_measurement_lists_the_known_ones(workdir: Path) -> None:
    result = run(["export", "--measurement", "power_kw", "--out", "x.csv"], workdir)
    assert result.returncode == 2
    assert result.stderr.startswith("config error: --measurement: unknown measurement "
                                    "'power_kw'; known: temperature_c, setpoint_c,")
    assert all(name in result.stderr for name in BY_NAME)
    assert not (workdir / "x.csv").exists()


def test_an_empty_range_is_a_header_only_file_and_exit_0(workdir: Path) -> None:
    result = run(["export", "--measurement", "power_w", "--from", "2030-01-01",
                  "--out", "empty.csv"], workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "empty.csv").read_text() == (
        "time,measurement,source,site,device_id,device,room,model,scope,other_tags,value,"
        "unit,label\n")
    assert "0 rows exported: nothing in the store for that range and selection" in result.stderr


def test_out_in_a_missing_directory_is_refused(workdir: Path) -> None:
    result = run(["export", "--measurement", "power_w", "--out", "nowhere/p.csv"], workdir)
    assert result.returncode == 2
    assert result.stderr == "config error: --out: directory nowhere does not exist\n"
    assert not (workdir / "nowhere").exists()


def test_a_missing_store_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "collector.toml").write_text('[store]\npath = "none.sqlite3"\n')
    result = run(["export", "--measurement", "power_w", "--out", "p.csv"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: embedded store none.sqlite3: no such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collector.toml"]


def test_an_unreachable_influxdb_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "collector.toml").write_text(
        f'[store]\nkind = "influxdb"\n[influxdb]\napi = "v1"\n'
        f'url = "http://127.0.0.1:{free_port()}"\ndatabase = "energy"\ntimeout = "2s"\n')
    result = run(["export", "--all", "--out", "all.csv"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: InfluxDB at http://127.0.0.1:")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collector.toml"]


@pytest.mark.parametrize(("args", "said"), [
    (["--measurement", "power_w", "--tz", "Mars/Olympus"], "--tz: unknown time zone"),
    (["--measurement", "power_w", "--resample", "7x"], "--resample: '7x'"),
    (["--measurement", "power_w", "--from", "soon"], "--from/--to: 'soon'"),
    (["--measurement", "power_w", "--format", "parquet"], "--format parquet needs --out"),
    ([], "--measurement: name one"),
])
def test_bad_options_are_named(workdir: Path, args: list[str], said: str) -> None:
    result = run(["export", *args], workdir)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr


def test_the_daemon_path_never_imports_pandas() -> None:
    """What ``collector run`` loads (the CLI, config, app, daemon, every source, the stores)
    leaves pandas and pyarrow out."""
    code = (
        "import sys, collector.cli, collector.pipeline.app, collector.pipeline.daemon,"
        " collector.pipeline.delivery,"
        " collector.pipeline.spool, collector.stores.sqlite, collector.stores.influx_v1,"
        " collector.stores.influx_v2, collector.stores.read, collector.outputs.export_shape\n"
        "import collector.sources.fritzbox.source, collector.sources.thinknx.source,"
        " collector.sources.overkiz.source\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(collector.cli.main, ['run', '--help'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == ""


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; (exit status, what the terminal got)."""
    import os
    import pty

    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    env.update(COLUMNS="100", TERM="xterm")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "collector", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    return proc.wait(60), screen.decode(errors="replace")


def test_a_large_export_shows_its_progress_on_a_terminal_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "collector.sqlite3")
    store.write_sync(encode_many(
        Reading("power_w", float(i), T0 + timedelta(seconds=i), "fritzbox", "home", "ain1",
                "Plug") for i in range(25_000)))
    store.close()
    (tmp_path / "collector.toml").write_text("")
    status, screen = _on_a_terminal(["export", "--measurement", "power_w", "--out", "p.csv"],
                                    tmp_path)
    assert status == 0, screen
    assert re.search(r"export: [12]0,000 rows", screen), screen
    assert "export: 0 rows" not in screen
    assert "25000 rows exported" in screen
    piped = run(["export", "--measurement", "power_w", "--out", "q.csv"], tmp_path)
    assert piped.stderr == "25000 rows exported\n"
    # a small export shows no progress, even on a terminal
    status, screen = _on_a_terminal(["export", "--measurement", "power_w", "--to",
                                     (T0 + timedelta(seconds=5)).isoformat()], tmp_path)
    assert status == 0 and "export:" not in screen and "5 rows exported" in screen
