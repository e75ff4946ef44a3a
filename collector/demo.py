"""``collector demo``: the built-in simulators, the real daemon, the embedded store, a summary.

No config is needed: the simulators listen on free loopback ports, the daemon polls them
on short intervals for ``seconds`` and stores into ``<dir>/collector.sqlite3``; then a
summary is printed and one CSV file per measurement is written into ``<dir>``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collector.app import App
from collector.config import Config, FritzboxConfig, SpoolConfig, StoreConfig
from collector.export import write_csv
from collector.schema import BY_NAME
from collector.simulators.fritzbox import FritzboxSimulator
from collector.stores.sqlite import SqliteStore

POLL_S = 5.0


def _config(out_dir: Path, fritz: FritzboxSimulator) -> Config:
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
    )


async def _collect(app: App, seconds: float, progress: Progress) -> None:
    from collector.daemon import run

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
    for name in ("collector.sqlite3", "spool.sqlite3"):
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    fritz = FritzboxSimulator()
    fritz.start()
    try:
        console.print(f"FRITZ!Box simulator on {fritz.url} (TR-064 {fritz.tr064_url})")
        app = App(_config(out_dir, fritz))
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            asyncio.run(_collect(app, seconds, progress))
    finally:
        fritz.stop()
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
            overview.add_row(source, str(len(ids)))
        console.print(overview)

        per_m = Table(title="readings per measurement")
        per_m.add_column("measurement")
        per_m.add_column("unit")
        per_m.add_column("points", justify="right")
        for name, count in sorted(counts.items()):
            per_m.add_row(name, BY_NAME[name].unit if name in BY_NAME else "?", str(count))
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
            values.add_row(lv.tags.get("device", "?"), lv.measurement, extra,
                           _fmt(lv.value, BY_NAME[lv.measurement].unit, lv.label), when)
        console.print(values)
        states = sum(1 for lv in latest if lv.measurement == "state")
        console.print(f"{states} state series (switch, window open, thermostat mode, VoIP ...)")

        written = []
        for name in sorted(counts):
            path = out_dir / f"{name}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                n = write_csv(name, store.query(name, None, None, None), fh)
            written.append(f"{path} ({n} rows)")
        console.print("CSV files:\n  " + "\n  ".join(written))
    finally:
        store.close()
