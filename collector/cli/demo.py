"""``collector demo``: the built-in simulators, the real daemon, the embedded store, a summary.

No config is needed: a FRITZ!Box, a Thinknx server and an Overkiz account are simulated on
free loopback ports, the daemon polls them on short intervals for ``seconds`` and stores into
``<dir>/collector.sqlite3``; the Overkiz account's history of the last days is backfilled.
Then a summary per source is printed, one CSV file per measurement and ``report.html`` (the
plots) are written into ``<dir>``. The three systems name their rooms in three languages:
the demo's room mapping (``DEMO_ROOMS``, ``DEMO_ALIASES``) makes them one house.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from collector.config import (
    Config,
    FritzboxConfig,
    OverkizConfig,
    SpoolConfig,
    StoreConfig,
    ThinknxConfig,
)
from collector.outputs import report_data
from collector.outputs.export import write_csv
from collector.pipeline.app import App
from collector.schema import BY_NAME
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.stores.sqlite import LatestValue, SqliteStore

POLL_S = 5.0
#: How far back the Overkiz history is backfilled.
BACKFILL_DAYS = 7
#: FRITZ! devices to rooms, by name or by AIN (as written on the device, spaces and all).
DEMO_ROOMS = {"Wohnzimmer": "Wohnzimmer", "Fernseher": "Wohnzimmer", "Bad Klima": "Bad",
              "09995 0421803": "Bad", "Schlafzimmer": "Schlafzimmer"}
#: Each site's own room names -> the house's.
DEMO_ALIASES = {
    "fritzbox": {"Wohnzimmer": "Living room", "Bad": "Bathroom", "Schlafzimmer": "Bedroom"},
    "thinknx": {"Soggiorno": "Living room", "Bagno": "Bathroom", "Camera da letto": "Bedroom"},
    "overkiz": {},  # its places are named as the house's rooms already
}
DEMO_ZONE = "Europe/Berlin"
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
                voip=True, tr064_url=fritz.tr064_url, timezone=DEMO_ZONE,
                rooms=DEMO_ROOMS, room_aliases=DEMO_ALIASES["fritzbox"],
            )
        ],
        thinknx=[ThinknxConfig.model_validate(
            knx.config_dict(name="demo-villa")
            | {"interval": POLL_S, "room_aliases": DEMO_ALIASES["thinknx"]})],
        overkiz=[
            OverkizConfig(
                name="demo-tahoma", url=overkiz.url, username=overkiz.username,
                password=SecretStr(overkiz.password), interval=OVERKIZ_STATES_S,
                timezone="Europe/Paris", room_aliases=DEMO_ALIASES["overkiz"],
            )
        ],
    )


async def _collect(app: App, seconds: float, progress: Progress, console: Console) -> None:
    from collector.pipeline.daemon import run

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


async def _backfill(config: Config, progress: Progress, console: Console) -> None:
    """The Overkiz account's history of the last BACKFILL_DAYS days, as `collector backfill`
    loads it (resumable watermarks beside the spool)."""
    from collector.pipeline.backfill import run_backfill

    app = App(config)
    try:
        since = datetime.now(UTC) - timedelta(days=BACKFILL_DAYS)
        bar = _Bar(progress)
        for outcome in await run_backfill(app, since, source_name="overkiz:demo-tahoma",
                                            progress=bar):
            errors = f", errors: {'; '.join(outcome.errors)}" if outcome.errors else ""
            console.print(f"backfill {outcome.source}: {outcome.windows} windows of "
                          f"{len(outcome.series)} series, {outcome.points} points{errors}",
                          markup=False)
    finally:
        await app.aclose()


class _Bar:
    """A progress bar per source of the backfill (collector.pipeline.backfill.Progress)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._totals: dict[str, int] = {}

    def begin(self, source: str) -> None:
        self._tasks[source] = self._progress.add_task(f"backfill {escape(source)}", total=None)
        self._totals[source] = 0

    def expect(self, source: str, windows: int) -> None:
        self._totals[source] += windows
        self._progress.update(self._tasks[source], total=self._totals[source])

    def advance(self, source: str, points: int) -> None:
        self._progress.update(self._tasks[source], advance=1)


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
        config = _config(out_dir, fritz, knx, overkiz)
        app = App(config)
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            asyncio.run(_collect(app, seconds, progress, console))
            asyncio.run(_backfill(config, progress, console))
    summary(out_dir, console)
    from collector.outputs.report import write_report

    report = write_report(out_dir / "collector.sqlite3", out_dir / "report.html",
                          tz=ZoneInfo(DEMO_ZONE), title="collector demo: one simulated house")
    console.print(f"report: {report}", markup=False)


def _fmt(value: float, unit: str, label: str | None) -> str:
    if label:
        return label
    return f"{value:.10g} {unit}".strip()


def _latest_text(values: list[LatestValue], limit: int = 3) -> str:
    def unit(m: str) -> str:
        return BY_NAME[m].unit if m in BY_NAME else ""

    def which(lv: LatestValue) -> str:
        extra = [lv.tags[k] for k in ("name", "kind", "period", "tariff") if k in lv.tags]
        return f"{lv.tags.get('device', '?')}" + (f" ({', '.join(extra)})" if extra else "")

    shown = [f"{which(lv)}: {_fmt(lv.value, unit(lv.measurement), lv.label)}"
             for lv in values[:limit]]
    more = f" (+{len(values) - limit} more)" if len(values) > limit else ""
    return "; ".join(shown) + more


def summary(out_dir: Path, console: Console) -> None:
    """Per source: devices, readings, points per measurement and latest values with
    units; the VoIP accounts and the device statistics; then one CSV per measurement."""
    store_path = out_dir / "collector.sqlite3"
    with report_data.connect(store_path) as db:
        devices = report_data.devices(db)
        counts = report_data.counts(db)
    store = SqliteStore(store_path)
    try:
        latest: dict[tuple[str, str], list[LatestValue]] = defaultdict(list)
        for lv in sorted(store.latest(), key=lambda x: -x.time_ns):
            latest[(lv.tags.get("source", "?"), lv.measurement)].append(lv)
        for source, n_devices in devices.items():
            mine = [c for c in counts if c.source == source]
            table = Table(title=f"{escape(source)}: {n_devices} devices, "
                                f"{sum(c.points for c in mine)} readings")
            for col in ("measurement", "unit", "points", "devices", "latest"):
                table.add_column(col, justify="right" if col in ("points", "devices") else "left")
            for c in mine:
                unit = BY_NAME[c.measurement].unit if c.measurement in BY_NAME else "?"
                # device names, rooms and labels come from devices: "[...]" is text, not markup
                table.add_row(c.measurement, escape(unit), str(c.points), str(c.devices),
                              escape(_latest_text(latest[(source, c.measurement)])))
            console.print(table)
        _voip_and_statistics(store, console)
        written = []
        for name, _ in store.measurements():
            path = out_dir / f"{name}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                n = write_csv(name, store.query(name, None, None, None), fh)
            written.append(f"{path} ({n} rows)")
        console.print("CSV files:\n  " + "\n  ".join(written), markup=False)
    finally:
        store.close()


def _voip_and_statistics(store: SqliteStore, console: Console) -> None:
    latest = store.latest()
    voip = Table(title="VoIP accounts (TR-064 X_VoIP)")
    for col in ("site", "account", "status", "UTC"):
        voip.add_column(col)
    for lv in latest:
        if lv.measurement == "state" and lv.tags.get("name") == "voip_status":
            when = datetime.fromtimestamp(lv.time_ns / 1e9, UTC).strftime("%H:%M:%S")
            voip.add_row(escape(lv.tags.get("site", "?")), escape(lv.tags.get("device", "?")),
                         escape(lv.label or f"{lv.value:g}"), when)
        elif lv.measurement == "voip_clients":
            voip.add_row(escape(lv.tags.get("site", "?")), "clients", f"{lv.value:g}", "")
    console.print(voip)
    stats: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for t, tags, value, _ in store.query("energy_period_wh", None, None, None):
        stats[(tags.get("source", "?"), tags.get("period", "?"))].append((t, value))
    table = Table(title="device statistics (energy per period, the devices' own totals)")
    for col in ("source", "period", "points", "from", "to", "total"):
        table.add_column(col, justify="right" if col in ("points", "total") else "left")
    for (source, period), points in sorted(stats.items()):
        first, last = min(t for t, _ in points), max(t for t, _ in points)
        table.add_row(escape(source), escape(period), str(len(points)), _day(first), _day(last),
                      f"{sum(v for _, v in points) / 1000:.1f} kWh")
    console.print(table)


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, ZoneInfo(DEMO_ZONE)).strftime("%Y-%m-%d")
