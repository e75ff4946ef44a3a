"""The command line, run as users run it (a subprocess, real files, real signals)."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import parse_config
from collector.pipeline.spool import Spool
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.thinknx import ThinknxSimulator, banner
from collector.simulators.thinknx_project import Kind
from collector.stores.sqlite import SqliteStore

CMD = [sys.executable, "-m", "collector"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    full_env.update(env or {})
    return subprocess.run([*CMD, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_once_with_empty_config_exits_cleanly(tmp_path: Path) -> None:
    (tmp_path / "collector.toml").write_text("")
    result = run(["once"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no sources configured" in result.stdout
    assert "Traceback" not in result.stderr
    # the self-metrics of the spool went into the embedded default store
    store = SqliteStore(tmp_path / "data" / "collector.sqlite3")
    assert dict(store.measurements()).get("collector", 0) >= 4
    store.close()


def test_once_with_only_store_section(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path / "x.sqlite3"}"\n'
                   f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n')
    result = run(["once", "--config", str(cfg)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.sqlite3").stat().st_mode & 0o777 == 0o600
    assert Spool(tmp_path / "spool.sqlite3").pending == 0


def test_config_error_is_one_message_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[fritzbox]]\nname = "home"\nusername = "u"\npassword = "${NOT_SET_VAR}"\n')
    result = run(["once", "--config", str(cfg)], tmp_path)
    assert result.returncode == 2
    assert "NOT_SET_VAR" in result.stderr
    assert "fritzbox[0].password" in result.stderr
    assert str(cfg) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr + result.stdout


def _fritz_config(tmp_path: Path, sim: FritzboxSimulator, password: str = "${FRITZ_PASSWORD}",
                  interval: str = "60s") -> Path:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f"""
[store]
path = "{tmp_path / 'store.sqlite3'}"
[spool]
path = "{tmp_path / 'spool.sqlite3'}"
flush_interval = "0.2s"
[[fritzbox]]
name = "home"
url = "{sim.url}"
tr064_url = "{sim.tr064_url}"
username = "{sim.username}"
password = "{password}"
interval = "{interval}"
timezone = "Europe/Berlin"
""")
    return cfg


def test_once_against_the_simulator_writes_readings_and_summary(tmp_path: Path) -> None:
    with FritzboxSimulator() as sim:
        cfg = _fritz_config(tmp_path, sim)
        result = run(["once", "--config", str(cfg)], tmp_path,
                     env={"FRITZ_PASSWORD": sim.password})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fritzbox:home" in result.stdout
    assert sim.password not in result.stdout + result.stderr
    store = SqliteStore(tmp_path / "store.sqlite3")
    counts = dict(store.measurements())
    store.close()
    for m in ("power_w", "energy_wh", "voltage_v", "temperature_c", "setpoint_c",
              "humidity_pct", "state", "energy_period_wh", "voip_clients"):
        assert counts.get(m, 0) > 0, m


def test_once_exits_1_when_a_source_fails_and_names_it(tmp_path: Path) -> None:
    with FritzboxSimulator() as sim:
        cfg = _fritz_config(tmp_path, sim, password="wrong-password")
        result = run(["once", "--config", str(cfg)], tmp_path)
    assert result.returncode == 1
    assert "AuthError" in result.stdout
    assert "wrong-password" not in result.stdout + result.stderr


def test_run_flushes_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    with FritzboxSimulator() as sim:
        cfg = _fritz_config(tmp_path, sim, interval="1s")
        env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
        env["FRITZ_PASSWORD"] = sim.password
        proc = subprocess.Popen([*CMD, "run", "--config", str(cfg)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        store_path = tmp_path / "store.sqlite3"

        def stored_polls() -> int:
            if not store_path.exists():
                return 0
            try:
                with sqlite3.connect(store_path) as db:
                    row = db.execute("SELECT count(DISTINCT time_ns) FROM points "
                                     "WHERE measurement = 'power_w'").fetchone()
            except sqlite3.OperationalError:  # the store file exists before its table
                return 0
            return int(row[0])

        deadline = time.monotonic() + 60
        while stored_polls() < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        logouts = sim.active_sessions
    assert proc.returncode == 0, err
    assert stored_polls() >= 3
    assert Spool(tmp_path / "spool.sqlite3").pending == 0
    assert logouts == 0  # the session was ended on shutdown
    assert sim.password not in err


def test_spool_status_and_dead_letter_commands(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n')
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append(["a value=1.0 1"])
    spool.append(["b value=2.0 2"])
    (_, _), (second, (line2,)) = spool.peek(2)
    spool.ack(second, second, rejected=[(line2, 422, "unprocessable entity: bad line")])
    spool.close()
    result = run(["spool", "status", "--config", str(cfg)], tmp_path)
    assert result.returncode == 0
    assert "1 pending, 1 dead letters" in result.stdout
    assert "unprocessable entity: bad line" in result.stdout
    result = run(["spool", "retry", "--config", str(cfg)], tmp_path)
    assert "1 dead letters queued again" in result.stdout
    assert Spool(tmp_path / "spool.sqlite3").pending == 2


def test_spool_status_names_an_unreadable_answer_instead_of_a_status(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n')
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.append(["a value=1.0 1", "b value=2.0 2"])
    ((first, (line1, line2)),) = spool.peek(1)
    # status 0: the store answered, but not in a form that could be read
    # (collector/pipeline/spool.py)
    spool.ack(first, first, rejected=[(line1, 0, "store answered 200 with an HTML page"),
                                      (line2, 400, "partial write: field type conflict")])
    spool.close()
    result = run(["spool", "status", "--config", str(cfg)], tmp_path)
    assert result.returncode == 0, result.stderr
    listed = [line.strip() for line in result.stdout.splitlines()[1:]]
    assert listed == [
        "dead letter 1 (unreadable answer): store answered 200 with an HTML page",
        "a value=1.0 1",
        "dead letter 2 (HTTP 400): partial write: field type conflict",
        "b value=2.0 2",
    ]
    assert "HTTP 0" not in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["spool", "--help"], ["demo", "--help"]])
def test_help(args: list[str], tmp_path: Path) -> None:
    result = run(args, tmp_path)
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_check_reports_store_and_source(tmp_path: Path) -> None:
    with FritzboxSimulator() as sim:
        cfg = _fritz_config(tmp_path, sim)
        ok = run(["check", "--config", str(cfg)], tmp_path, env={"FRITZ_PASSWORD": sim.password})
        bad = run(["check", "--config", str(cfg)], tmp_path, env={"FRITZ_PASSWORD": "nope-nope"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "sqlite:" in ok.stdout
    assert "fritzbox:home" in ok.stdout
    assert "FRITZ!OS" in ok.stdout
    assert bad.returncode == 1
    assert "NO" in bad.stdout
    assert "nope-nope" not in bad.stdout + bad.stderr


START = 1718028800.0  # 2024-06-10 14:13:20 UTC: the simulated box's clock


def _table_row(stdout: str, first_cell: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[\u2502\u2503|]", line)]
        if first_cell in cells:
            return cells[cells.index(first_cell):-1]
    raise AssertionError(f"no table row {first_cell!r} in:\n{stdout}")


def test_backfill_command_continues_where_it_ended(tmp_path: Path) -> None:
    since = datetime.fromtimestamp(START - 1800, UTC).isoformat()
    state = tmp_path / "spool.sqlite3.backfill.json"

    def power_points() -> int:
        store = SqliteStore(tmp_path / "store.sqlite3")
        try:
            return dict(store.measurements()).get("power_w", 0)
        finally:
            store.close()

    with FritzboxSimulator(clock=lambda: START) as sim:
        cfg = _fritz_config(tmp_path, sim)
        env = {"FRITZ_PASSWORD": sim.password, "COLUMNS": "200"}
        first = run(["backfill", "--config", str(cfg), "--since", since], tmp_path, env=env)
        marks = json.loads(state.read_text())["watermarks"]["fritzbox:home"]
        power_first, size_first = power_points(), state.stat().st_size
        # further back than before: still nothing the first run stored is fetched again
        again = run(["backfill", "--config", str(cfg), "--since", "2024-01-01"], tmp_path,
                    env=env)
        power_again = power_points()
        redo = run(["backfill", "--config", str(cfg), "--since", since, "--restart"], tmp_path,
                   env=env)
        bad = run(["backfill", "--config", str(cfg), "--source", "nope"], tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    series = len(marks)
    assert series > 1
    _, n_first, _, points_first, result_first = _table_row(first.stdout, "fritzbox:home")
    assert (n_first, result_first) == (str(series), "ok")
    assert power_first >= 180  # 10-second statistics of the last 30 minutes
    assert again.returncode == 0, again.stdout + again.stderr
    _, n_again, _, points_again, _ = _table_row(again.stdout, "fritzbox:home")
    assert n_again.endswith(f"({series} resumed)")
    assert int(points_again) < int(points_first)
    assert power_again == power_first
    assert sorted(json.loads(state.read_text())["watermarks"]["fritzbox:home"]) == sorted(marks)
    assert state.stat().st_size == size_first
    _, n_redo, _, points_redo, _ = _table_row(redo.stdout, "fritzbox:home")
    assert (n_redo, points_redo) == (str(series), points_first)
    assert bad.returncode == 2
    assert "no source named 'nope'" in bad.stderr


def test_tables_show_texts_from_devices_and_configs_as_they_are(tmp_path: Path) -> None:
    # '[/x]' (the config's name) would end rich markup that was never opened, and
    # '[ain=...]' (the user name, quoted in the box's refusal) would vanish as a style.
    with FritzboxSimulator(username="[ain=08761 0000434]") as sim:
        cfg = _fritz_config(tmp_path, sim, password="wrong-password")
        cfg.write_text(cfg.read_text().replace('name = "home"', 'name = "[/x]"'))
        wide = {"COLUMNS": "400"}
        once = run(["once", "--config", str(cfg)], tmp_path, env=wide)
        check = run(["check", "--config", str(cfg)], tmp_path, env=wide)
    for result in (once, check):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
        assert "fritzbox:[/x]" in result.stdout
        assert "user '[ain=08761 0000434]' was refused" in result.stdout
        assert "wrong-password" not in result.stdout + result.stderr


def test_backfill_shows_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    since = datetime.fromtimestamp(START - 1800, UTC).isoformat()
    with FritzboxSimulator(clock=lambda: START) as sim:
        cfg = _fritz_config(tmp_path, sim)
        env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
        env.update(FRITZ_PASSWORD=sim.password, COLUMNS="120", TERM="xterm")
        master, slave = pty.openpty()
        proc = subprocess.Popen([*CMD, "backfill", "--config", str(cfg), "--since", since],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        terminal = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        stdout, _ = proc.communicate(timeout=60)
        os.close(master)
        piped = run(["backfill", "--config", str(cfg), "--since", since], tmp_path,
                    env={"FRITZ_PASSWORD": sim.password})
    assert proc.returncode == 0, terminal.decode(errors="replace")
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.decode(errors="replace"))
    series = len(json.loads((tmp_path / "spool.sqlite3.backfill.json").read_text())
                 ["watermarks"]["fritzbox:home"])
    assert "fritzbox:home" in screen
    assert f"{series}/{series} windows" in screen
    assert "fritzbox:home" in stdout.decode()  # the table still goes to stdout
    assert "windows," not in piped.stderr  # no progress bars into a pipe or a log file


def _printed_section(printed: str, header: str) -> list[str]:
    """The config lines a simulator printed, from ``header`` on, as a user pastes them."""
    lines = printed.splitlines()
    return lines[lines.index(header):]


def test_simulate_thinknx_prints_a_config_that_works_local_and_cloud(tmp_path: Path) -> None:
    head = (f'[store]\nkind = "sqlite"\npath = "{tmp_path / "store.sqlite3"}"\n'
            f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n\n')
    # the clock stands still: the rate limit is a budget for all four runs (about 100 requests)
    with ThinknxSimulator(clock=lambda: START, rate_limit=200.0) as sim:
        local = _printed_section(banner(sim), "[[thinknx]]")
        # the cloud form as the comment says: its keys instead of url, auth, username, password
        cloud = [line[1:] if line.startswith("#cloud_") else line for line in local
                 if line.split(" = ")[0] not in ("url", "auth", "username", "password")]
        cloud = [line.replace('name = "sim"', 'name = "sim-cloud"') for line in cloud]
        (tmp_path / "local.toml").write_text(head + "\n".join(local) + "\n")
        (tmp_path / "cloud.toml").write_text(head + "\n".join(cloud) + "\n")
        wide = {"COLUMNS": "200"}
        results = {form: (run(["check", "--config", f"{form}.toml"], tmp_path, env=wide),
                          run(["once", "--config", f"{form}.toml"], tmp_path, env=wide))
                   for form in ("local", "cloud")}
        objects = len(sim.objects)
        # every thermostat with a sensor of its own (the hall's has none)
        thermostats = [o.guid for o in sim.objects
                       if o.kind is Kind.THERMOSTAT and o.name != "Termostato Ingresso"]
        expected = {guid: sim.status_value(guid, "actualtemp") for guid in thermostats}
        cloud_key = sim.cloud_key
    polled: dict[str, int] = {}
    for site, (check, once) in zip(("sim", "sim-cloud"), results.values(), strict=True):
        assert check.returncode == 0, check.stdout + check.stderr
        assert once.returncode == 0, once.stdout + once.stderr
        ok, detail = _table_row(check.stdout, f"thinknx:{site}")[1:]
        assert ok == "yes" and detail.endswith(f", {objects} objects"), detail
        job, points, _, result = _table_row(once.stdout, f"thinknx:{site}")[1:]
        assert (job, result) == ("poll", "ok")
        polled[site] = int(points)
        assert cloud_key not in check.stdout + check.stderr + once.stdout + once.stderr
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        stored = {site: sum(1 for name, _ in store.measurements() if name != "collector"
                            for _, tags, _, _ in store.query(name, None, None, None)
                            if tags["source"] == "thinknx" and tags["site"] == site)
                  for site in polled}
        temps = {(tags["site"], tags["device_id"]): (time_ns, value)
                 for time_ns, tags, value, _ in store.query("temperature_c", None, None, None)
                 if tags["source"] == "thinknx"}
    finally:
        store.close()
    assert stored == polled and polled["sim"] == polled["sim-cloud"] > objects
    for site in ("sim", "sim-cloud"):
        got = {guid: temps[(site, guid)] for guid in thermostats}
        assert {guid: value for guid, (_, value) in got.items()} == pytest.approx(expected)
        # polled values carry the poll time (the machine's clock, not the simulator's)
        assert all(time_ns > START * 1e9 for time_ns, _ in got.values())


@pytest.mark.parametrize(("system", "kind"), [("fritzbox", "fritzbox"), ("thinknx", "thinknx"),
                                              ("overkiz", "overkiz")])
def test_simulate_prints_a_valid_config_and_stops_on_ctrl_c(system: str, kind: str,
                                                            tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    proc = subprocess.Popen([*CMD, "simulate", system], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    printed = []
    try:
        for line in proc.stdout:
            if line.startswith("Press Ctrl-C"):
                break
            printed.append(line)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    section = "\n".join(_printed_section("".join(printed), f"[[{kind}]]"))
    config = parse_config(section, Path("collector.toml"), env={})
    (source,) = getattr(config, kind)
    url = re.search(r"http://127\.0\.0\.1:(\d+)", printed[0])
    assert url is not None and source.url == url.group(0)


def _readme_commands() -> list[list[str]]:
    """Every ``collector ...`` line of the README's shell blocks, comments removed."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    return [shlex.split(line, comments=True) for block in blocks
            for line in block.splitlines() if line.startswith("collector ")]


def test_readme_commands_are_commands_and_options_the_cli_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click

    monkeypatch.chdir(tmp_path)
    (tmp_path / "setup.json").write_text("{}")  # the file the README's example names

    from collector.cli import main

    commands = _readme_commands()
    assert {args[1] for args in commands} >= {"check", "once", "run", "spool", "export",
                                              "backfill", "simulate"}
    assert sorted(args[2] for args in commands if args[1] == "simulate") == [
        "fritzbox", "overkiz", "overkiz", "thinknx"]
    for args in commands:
        command: click.Command = main
        rest = args[1:]
        while isinstance(command, click.Group):
            found = command.get_command(click.Context(command), rest[0])
            assert found is not None, args
            command, rest = found, rest[1:]
        command.make_context(command.name, rest)  # refuses unknown options and bad values


def test_long_error_texts_are_shown_whole_below_the_table(tmp_path: Path) -> None:
    with FritzboxSimulator() as sim:
        cfg = _fritz_config(tmp_path, sim, password="wrong-password")
        once = run(["once", "--config", str(cfg)], tmp_path, env={"COLUMNS": "80"})
    assert once.returncode == 1
    notes = [line for line in once.stdout.splitlines() if line.startswith("[1] ")]
    assert len(notes) == 1, once.stdout
    # the whole text on one line, whatever the terminal's width
    assert notes[0].startswith("[1] AuthError: ")
    assert notes[0] == ("[1] AuthError: FRITZ!Box home: login: user 'collector' was refused "
                        "(wrong user name or password); the box blocks further logins for 1 s")
    assert "[1]" in once.stdout.split(notes[0])[0]  # the cell points to it
