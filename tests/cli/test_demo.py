"""``collector demo``: the three simulators, the real daemon, the embedded store, the summary."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from collector.cli.demo import BACKFILL_DAYS, run_demo, summary
from collector.lineprotocol import encode_many
from collector.model import Reading, make_tags
from collector.schema import BY_NAME
from collector.stores.sqlite import SqliteStore

WHEN = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=250, color_system=None, force_terminal=False), out


def _rows(text: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\u2502")]
        if len(cells) > 2 and cells[1] == first_cell:
            rows.append(cells[1:-1])
    return rows


def test_summary_shows_names_rooms_and_labels_from_devices_as_they_are(tmp_path: Path) -> None:
    # "[/x]" would close markup that was never opened (rich fails), "[bold]" would vanish
    readings = [
        Reading("temperature_c", 21.5, WHEN, "thinknx", "villa", "g1", "[/x]",
                make_tags(room="[bold]Salon")),
        Reading("power_w", 302.0, WHEN, "fritzbox", "[home]", "ain1", "Plug [1]"),
        Reading("state", 1.0, WHEN, "overkiz", "tahoma", "io://1/2", "[red]Door",
                make_tags(name="open_closed"), label="[i]open"),
        Reading("state", 1.0, WHEN, "fritzbox", "[home]", "voip0", "VoIP [0]",
                make_tags(name="voip_status"), label="registered"),
        Reading("energy_period_wh", 1234.5, datetime(2026, 2, 28, 23, tzinfo=UTC), "fritzbox",
                "[home]", "ain1", "Plug [1]", make_tags(period="day")),
        Reading("energy_period_wh", 100.0, datetime(2026, 3, 1, 23, tzinfo=UTC), "fritzbox",
                "[home]", "ain1", "Plug [1]", make_tags(period="day")),
    ]
    store = SqliteStore(tmp_path / "collector.sqlite3")
    store.write_sync(encode_many(readings))
    store.close()
    console, out = _console()
    summary(tmp_path, console)
    text = out.getvalue()
    assert "thinknx: 1 devices, 1 readings" in text
    assert "fritzbox: 2 devices, 4 readings" in text
    assert _rows(text, "temperature_c") == [["temperature_c", "°C", "1", "1", "[/x]: 21.5 °C"]]
    assert _rows(text, "power_w") == [["power_w", "W", "1", "1", "Plug [1]: 302 W"]]
    assert ["state", "code", "1", "1", "[red]Door (open_closed): [i]open"] in _rows(text, "state")
    # the newest point of each series: one series of daily totals
    assert _rows(text, "energy_period_wh") == [
        ["energy_period_wh", "Wh", "2", "1", "Plug [1] (day): 100 Wh"]]
    # the VoIP accounts and the device statistics (local days in the demo's zone)
    assert _rows(text, "[home]") == [["[home]", "VoIP [0]", "registered", "12:30:05"]]
    assert _rows(text, "fritzbox") == [
        ["fritzbox", "day", "2", "2026-03-01", "2026-03-02", "1.3 kWh"]]
    with (tmp_path / "state.csv").open(encoding="utf-8") as fh:
        got = {row["device"]: (row["label"], row["value"]) for row in csv.DictReader(fh)}
    assert got == {"[red]Door": ("[i]open", "1.0"), "VoIP [0]": ("registered", "1.0")}


def test_demo_collects_from_all_three_simulators(tmp_path: Path) -> None:
    (tmp_path / "overkiz-demo-tahoma.setup.json").write_text("left over")
    console, out = _console()
    run_demo(seconds=6.0, out_dir=tmp_path, console=console)
    text = out.getvalue()
    store = SqliteStore(tmp_path / "collector.sqlite3")
    try:
        counts = dict(store.measurements())
        per_source: dict[str, set[str]] = {}
        rooms: dict[str, set[str]] = {}
        for _, tags, value, _ in store.query("temperature_c", None, None, None):
            per_source.setdefault(tags["source"], set()).add(tags["site"])
            rooms.setdefault(tags.get("room", ""), set()).add(tags["source"])
            assert -30.0 < value < 60.0
        metrics = {tags["metric"] for _, tags, _, _ in store.query("collector", None, None, None)}
        history = [t for t, tags, _, _ in store.query("temperature_c", None, None, None)
                   if tags["source"] == "overkiz"]
    finally:
        store.close()
    assert per_source == {"fritzbox": {"demo-home"}, "thinknx": {"demo-villa"},
                          "overkiz": {"demo-tahoma"}}
    # one room model: the living room's thermometers of all three systems under one name
    assert rooms["Living room"] == {"fritzbox", "thinknx", "overkiz"}
    assert not {"Wohnzimmer", "Soggiorno", "Ground floor"} & set(rooms)
    # the Overkiz history was backfilled: readings from days before the demo started
    now_ns = datetime.now(UTC).timestamp() * 1e9
    assert min(history) < now_ns - (BACKFILL_DAYS - 1) * 86400e9
    assert re.search(r"backfill overkiz:demo-tahoma: \d+ windows of \d+ series, [1-9]\d* points\n",
                     text)
    # the self-metrics the daemon wrote are the ones the schema describes
    assert metrics == {"duration_s", "points", "errors", "backlog", "dead_letters",
                       "dropped_total", "delivery_failures"}
    described = BY_NAME["collector"].sources
    assert all(re.search(rf"\b{name}\b", described) for name in [*metrics, "dropped"])
    devices = {m[1]: int(m[2]) for m in re.finditer(r"(\w+): (\d+) devices, \d+ readings", text)}
    assert devices["thinknx"] == 23 + 1  # the KNX objects and the server itself
    assert devices["fritzbox"] > 10 and devices["overkiz"] > 5
    # VoIP status and device statistics of every system that keeps them
    voip = {row[1]: row[2] for row in _rows(text, "demo-home")}
    # the simulated account 0 is registered, and "connected" while it is in a call
    assert voip["VoIP account 0"] in ("registered", "connected")
    assert voip["VoIP account 1"] == "not registered" and voip["clients"] == "2"
    stats = {(row[0], row[1]) for row in _rows(text, "fritzbox") + _rows(text, "overkiz")}
    assert {("fritzbox", "day"), ("fritzbox", "month"), ("overkiz", "day")} <= stats
    for name, count in counts.items():
        with (tmp_path / f"{name}.csv").open(encoding="utf-8") as fh:
            assert sum(1 for _ in csv.DictReader(fh)) == count, name
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert all(f"Plotly.newPlot('plot{n}'" in report for n in range(5))
    assert f"report: {tmp_path / 'report.html'}" in text
    # the stale setup cache of an earlier demo was removed, a fresh one written
    assert (tmp_path / "overkiz-demo-tahoma.setup.json").read_text() != "left over"
