"""``collector demo``: the three simulators, the real daemon, the embedded store, the summary."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from collector.demo import _summary, run_demo
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
    ]
    store = SqliteStore(tmp_path / "collector.sqlite3")
    store.write_sync(encode_many(readings))
    store.close()
    console, out = _console()
    _summary(tmp_path, console)
    text = out.getvalue()
    assert _rows(text, "[/x]") == [
        ["[/x]", "temperature_c", "room=[bold]Salon", "21.5 °C", "12:30:05"]]
    assert _rows(text, "Plug [1]") == [["Plug [1]", "power_w", "", "302 W", "12:30:05"]]
    assert [row[1] for row in _rows(text, "overkiz")] == ["1"]
    assert "1 state series" in text
    with (tmp_path / "state.csv").open(encoding="utf-8") as fh:
        (row,) = csv.DictReader(fh)
    assert (row["device"], row["label"], row["value"]) == ("[red]Door", "[i]open", "1.0")


def test_demo_collects_from_all_three_simulators(tmp_path: Path) -> None:
    (tmp_path / "overkiz-demo-tahoma.setup.json").write_text("left over")
    console, out = _console()
    run_demo(seconds=6.0, out_dir=tmp_path, console=console)
    text = out.getvalue()
    store = SqliteStore(tmp_path / "collector.sqlite3")
    try:
        counts = dict(store.measurements())
        per_source: dict[str, set[str]] = {}
        for _, tags, value, _ in store.query("temperature_c", None, None, None):
            per_source.setdefault(tags["source"], set()).add(tags["site"])
            assert -30.0 < value < 60.0
        metrics = {tags["metric"] for _, tags, _, _ in store.query("collector", None, None, None)}
    finally:
        store.close()
    assert per_source == {"fritzbox": {"demo-home"}, "thinknx": {"demo-villa"},
                          "overkiz": {"demo-tahoma"}}
    # the self-metrics the daemon wrote are the ones the schema describes
    assert metrics == {"duration_s", "points", "errors", "backlog", "dead_letters",
                       "dropped_total", "delivery_failures"}
    described = BY_NAME["collector"].sources
    assert all(re.search(rf"\b{name}\b", described) for name in [*metrics, "dropped"])
    devices = {row[0]: int(row[1]) for row in (_rows(text, s)[0] for s in per_source)}
    assert devices["thinknx"] == 21 + 1  # the KNX objects and the server itself
    assert devices["fritzbox"] > 10 and devices["overkiz"] > 5
    for name, count in counts.items():
        with (tmp_path / f"{name}.csv").open(encoding="utf-8") as fh:
            assert sum(1 for _ in csv.DictReader(fh)) == count, name
    # the stale setup cache of an earlier demo was removed, a fresh one written
    assert (tmp_path / "overkiz-demo-tahoma.setup.json").read_text() != "left over"
