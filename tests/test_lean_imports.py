"""``collector run`` imports only what collecting needs.

Its resident memory (goal: <= 60 MB with about 100 devices) is mostly the code it imports:
the other commands' libraries (pandas, plotly, rich, ...), the simulators and modules that
libraries pull in whenever they happen to be installed (trio, httpx's command line client)
must stay out. The daemon is run for real, as a child process against the three simulators,
and its ``sys.modules`` read once it has stored readings of every source.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.overkiz import config_snippet as overkiz_snippet
from collector.simulators.thinknx import ThinknxSimulator

#: Module name prefixes ``collector run`` must never import.
NOT_IN_THE_DAEMON = (
    "pandas", "pyarrow", "numpy", "plotly", "matplotlib", "selenium", "rich", "pygments",
    "trio", "httpx._main", "influxdb_client", "yaml",
    "collector.simulators", "collector.outputs.export", "collector.outputs.analysis",
    "collector.outputs.report", "collector.outputs.frames", "collector.stores.read",
    "collector.cli.demo", "collector.bench", "collector.cli.progress",
    "collector.outputs.dashboards",
)

#: Runs ``collector run`` the way the console script does; writes the modules loaded at exit.
_CHILD = """
import atexit, json, sys
out, config = sys.argv[1], sys.argv[2]
atexit.register(lambda: open(out, "w").write(
    json.dumps(sorted(name for name, mod in sys.modules.items() if mod is not None))))
from collector.cli import main
main(["run", "--config", config])
"""

SOURCES = {"fritzbox", "thinknx", "overkiz"}
#: What must be imported when collecting from all three systems (else the check is empty).
COLLECTING = (
    "collector.pipeline.app", "collector.pipeline.daemon", "collector.stores.sqlite", "httpx",
    "lxml.etree",
    "collector.sources.fritzbox.parse", "collector.sources.thinknx.parse",
    "collector.sources.overkiz.parse",
)


def _bad(modules: list[str]) -> list[str]:
    """The modules matching a prefix: the module, its submodules and, for the collector's
    own, its sibling modules (collector.outputs.export covers collector.outputs.export_shape)."""
    return [m for m in modules
            if any(m == p or m.startswith(p + ".")
                   or (p.startswith("collector.") and m.startswith(p + "_"))
                   for p in NOT_IN_THE_DAEMON)]


def test_the_rule_finds_what_it_forbids() -> None:
    assert _bad(["collector.outputs.export_shape", "collector.outputs.export", "plotly.io",
                 "trio", "rich", "collector.bench.soak", "collector.simulators._http"]) == [
        "collector.outputs.export_shape", "collector.outputs.export", "plotly.io", "trio", "rich",
        "collector.bench.soak", "collector.simulators._http"]
    assert _bad(["collector.pipeline.app", "httpx", "collector.outputs.report_data",
                 "collector.reporter", "richer", "trio_websocket",
                 "collector.sources.fritzbox.parse"]) == [
        "collector.outputs.report_data"]


def _sources_stored(store: Path) -> set[str]:
    if not store.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT DISTINCT json_extract(tags, '$.source') FROM points").fetchall()
    except sqlite3.OperationalError:  # the file exists before its table
        return set()
    return {str(source) for (source,) in rows}


def _config(tmp: Path, box: FritzboxSimulator, knx: ThinknxSimulator,
            overkiz: OverkizSimulator) -> Path:
    cfg = tmp / "collector.toml"
    cfg.write_text(
        f'[store]\nkind = "sqlite"\npath = "{tmp}/store.sqlite3"\n'
        f'[spool]\npath = "{tmp}/spool.sqlite3"\nflush_interval = "1s"\n'
        f'[log]\nlevel = "WARNING"\n'
        f'[[fritzbox]]\nname = "home"\nurl = "{box.url}"\ntr064_url = "{box.tr064_url}"\n'
        f'username = "{box.username}"\npassword = "{box.password}"\ninterval = "1s"\n'
        f'timezone = "Europe/Berlin"\n'
        + overkiz_snippet(overkiz) + 'interval = "1s"\ntimezone = "Europe/Paris"\n'
        + knx.config_snippet(name="villa").replace('interval = "60s"', 'interval = "1s"', 1)
    )
    return cfg


def test_collector_run_imports_nothing_of_the_other_commands(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    with FritzboxSimulator(devices=5) as box, ThinknxSimulator(count=5) as knx, \
            OverkizSimulator() as overkiz:
        cfg = _config(tmp_path, box, knx, overkiz)
        env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(out), str(cfg)],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            while (not _sources_stored(tmp_path / "store.sqlite3") >= SOURCES
                   and proc.poll() is None and time.monotonic() < deadline):
                time.sleep(0.2)
            stored = _sources_stored(tmp_path / "store.sqlite3")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert stored >= SOURCES, err
    modules = json.loads(out.read_text())
    assert [m for m in COLLECTING if m not in modules] == []
    assert _bad(modules) == []


def test_importing_the_command_line_loads_no_http_client_and_no_tables() -> None:
    """What every command (and ``collector --help``) starts with: the command line and the
    config, no HTTP client, scheduler, XML parser or store."""
    code = ("import sys, json; import collector.cli; "
            "print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    modules = json.loads(proc.stdout)
    assert "collector.cli" in modules and "collector.config" in modules
    assert _bad(modules) == []
    assert [m for m in modules if m.split(".")[0] in ("httpx", "httpcore", "apscheduler",
                                                      "lxml", "sqlite3")] == []
