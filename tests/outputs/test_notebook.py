"""docs/analysis.ipynb runs end to end: the simulators fill an embedded store, and the notebook
shows daily energy, cost and temperature vs setpoint per room, with plots."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from collector.stores.sqlite import SqliteStore

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "analysis.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o["text"])
        elif "data" in o and "text/plain" in o["data"]:
            out.append(o["data"]["text/plain"])
    return "".join(out)


def test_the_analysis_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    monkeypatch.setenv("COLLECTOR_NOTEBOOK_DIR", str(tmp_path / "demo"))
    monkeypatch.setenv("COLLECTOR_NOTEBOOK_SECONDS", "6")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(nb, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.get("output_type") != "error" for c in code for o in c.get("outputs", []))

    # the store the simulators filled: the daily totals of the three FRITZ! plugs (31 days)
    # and of the Overkiz meters (today's)
    store = SqliteStore(tmp_path / "demo" / "collector.sqlite3")
    daily_totals = [(tags["source"], v) for _, tags, v, _ in
                    store.query("energy_period_wh", None, None, None)
                    if tags.get("period") == "day" and tags.get("scope") != "group"]
    store.close()
    assert sum(1 for source, _ in daily_totals if source == "fritzbox") == 31 * 3

    # cost cell: days, kWh and euros computed from those same totals
    cost_text = next(_text(c) for c in code if "EUR at 0.30 EUR/kWh" in _text(c))
    m = re.match(r"(\d+) days, ([\d.]+) kWh, ([\d.]+) EUR", cost_text)
    assert m is not None, cost_text
    kwh = sum(v for _, v in daily_totals) / 1000
    assert int(m.group(1)) == 31
    assert float(m.group(2)) == pytest.approx(kwh, abs=0.05)
    assert float(m.group(3)) == pytest.approx(kwh * 0.30, abs=0.01)

    # the daily table shows the plugs as columns; the climate summary names rooms
    table = _text(code[1])
    assert all(name in table for name in ("Fernseher", "Kühlschrank", "Waschmaschine"))
    rooms = next(_text(c) for c in code if "rooms with a setpoint:" in _text(c))
    shown = rooms.split("rooms with a setpoint: ", 1)[1].splitlines()[0].split(", ")
    assert len(shown) >= 2, rooms  # the Thinknx and Overkiz thermostats' rooms
    summary = next(_text(c) for c in code if "delta_c" in _text(c))
    assert all(room in summary for room in shown)
    # plots: the energy bars, the cost line and the rooms
    images = sum(1 for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images == 3
