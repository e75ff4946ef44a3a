"""``collector demo``: the built-in simulators, the real daemon, the embedded store, a summary.

No config is needed: a FRITZ!Box, a Thinknx server and an Overkiz account are simulated on
free loopback ports, the daemon polls them on short intervals for ``seconds`` and stores into
``<dir>/collector.sqlite3``; then a summary is printed and one CSV file per measurement is
written into ``<dir>``.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collector.app import App
from collector.config import (
    Config,
    FritzboxConfig,
    OverkizConfig,
    SpoolConfig,
    StoreConfig,
    ThinknxConfig,
)
from collector.export import write_csv
from collector.schema import BY_NAME
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.stores.sqlite import SqliteStore

POLL_S = 5.0
#: Full state reads of the Overkiz account; between them, its event listener (every second).
OVERKIZ_STATES_S = 15.0
#: What a previous demo left in the directory: stores and the Overkiz account's state files.
_LEFTOVERS = ("collector.sqlite3", "spool.sqlite3", "overkiz-demo-tahoma.setup.json",
              "overkiz-demo-tahoma.limits.json")


def _config(out_dir: Path, fritz: FritzboxSimulator, knx: ThinknxSimulator,
            overkiz: OverkizSimulator) -> Config:
    return Config(
        store=StoreConfig(kind="sqlite", path=out_dir / "collector.sqlite3"),
        spool=SpoolConfig(path=out_dir / "spool.sqlite3", flush_interval=1.0),
        fritzbox=[
            FritzboxConfig(
                name="demo-home", url=fritz.url, username=fritz.username,
                password=SecretStr(fritz.password), interval=POLL_S, stats_interval=300.0,
                voip=True, tr064_url=fritz.tr064_url, timezone="Europe/Berlin",
            )
        ],
        thinknx=[ThinknxConfig.model_validate(
            knx.config_dict(name="demo-villa") | {"interval": POLL_S})],
        overkiz=[
            OverkizConfig(
                name="demo-tahoma", url=overkiz.url, username=overkiz.username,
                password=SecretStr(overkiz.password), interval=OVERKIZ_STATES_S,
                timezone="Europe/Paris",
            )
        ],
    )


async def _collect(app: App, seconds: float, progress: Progress, console: Console) -> None:
    from collector.daemon import run

    # what `collector check` does: log in, read each server's setup once, reach the store
    checked = Table(title="collector check")
    for col in ("part", "ok", "detail"):
        checked.add_column(col)
    for part, ok, detail in await app.check():
        checked.add_row(escape(part), "yes" if ok else "[red]NO[/red]", escape(detail))
    console.print(checked)
    stop = asyncio.Event()
    task = progress.add_task("collecting", total=seconds)
    runner = asyncio.create_task(run(app, stop))
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds and not runner.done():
        progress.update(task, completed=elapsed)
        await asyncio.sleep(0.2)
    progress.update(task, completed=seconds)
    stop.set()
    await runner


def _fmt(value: float, unit: str, label: str | None) -> str:
    text = f"{value:.10g} {unit}".strip()
    return f"{text} ({label})" if label else text


def run_demo(*, seconds: float, out_dir: Path, console: Console) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in _LEFTOVERS:
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    with ExitStack() as running:
        fritz = running.enter_context(FritzboxSimulator())
        knx = running.enter_context(ThinknxSimulator())
        overkiz = running.enter_context(OverkizSimulator())
        console.print(f"FRITZ!Box simulator on {fritz.url} (TR-064 {fritz.tr064_url})",
                      markup=False)
        console.print(f"Thinknx simulator on {knx.url} ({len(knx.objects)} KNX objects)",
                      markup=False)
        console.print(f"Overkiz simulator on {overkiz.url} ({len(overkiz.devices())} devices)",
                      markup=False)
        app = App(_config(out_dir, fritz, knx, overkiz))
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            asyncio.run(_collect(app, seconds, progress, console))
    _summary(out_dir, console)


def _summary(out_dir: Path, console: Console) -> None:
    store = SqliteStore(out_dir / "collector.sqlite3")
    try:
        counts = dict(store.measurements())
        latest = store.latest()
        per_source: dict[str, set[str]] = {}
        for lv in latest:
            if lv.measurement != "collector":
                per_source.setdefault(lv.tags.get("source", "?"), set()).add(
                    lv.tags.get("device_id", "?"))
        overview = Table(title="devices and readings")
        overview.add_column("source")
        overview.add_column("devices", justify="right")
        for source, ids in sorted(per_source.items()):
            overview.add_row(escape(source), str(len(ids)))
        console.print(overview)

        per_m = Table(title="readings per measurement")
        per_m.add_column("measurement")
        per_m.add_column("unit")
        per_m.add_column("points", justify="right")
        for name, count in sorted(counts.items()):
            per_m.add_row(escape(name), BY_NAME[name].unit if name in BY_NAME else "?",
                          str(count))
        console.print(per_m)

        values = Table(title="latest values (states: `collector export --measurement state`)")
        for col in ("device", "measurement", "tag", "value", "UTC"):
            values.add_column(col)
        shown = ("power_w", "energy_wh", "voltage_v", "temperature_c", "setpoint_c",
                 "humidity_pct", "battery_pct", "level_pct", "voip_clients")
        for lv in sorted(latest, key=lambda x: (x.tags.get("device", ""), x.measurement)):
            if lv.measurement not in shown:
                continue
            extra = ", ".join(f"{k}={v}" for k, v in sorted(lv.tags.items())
                              if k not in ("source", "site", "device", "device_id", "model"))
            when = datetime.fromtimestamp(lv.time_ns / 1e9, UTC).strftime("%H:%M:%S")
            # device names, rooms and labels come from devices and configs: "[...]" in them
            # is text, not markup
            values.add_row(escape(lv.tags.get("device", "?")), lv.measurement, escape(extra),
                           escape(_fmt(lv.value, BY_NAME[lv.measurement].unit, lv.label)),
                           when)
        console.print(values)
        states = sum(1 for lv in latest if lv.measurement == "state")
        console.print(f"{states} state series (switch, window open, thermostat mode, VoIP ...)")

        written = []
        for name in sorted(counts):
            path = out_dir / f"{name}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                n = write_csv(name, store.query(name, None, None, None), fh)
            written.append(f"{path} ({n} rows)")
        console.print("CSV files:\n  " + "\n  ".join(written), markup=False)
    finally:
        store.close()
