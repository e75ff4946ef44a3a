"""``report.html``: the collected history as plots in one self-contained page.

The page needs no network to open: plotly.js and the page's style are inlined, the data
is embedded as JSON. It shows what the Grafana dashboards show first (the numbers come from
collector/outputs/report_data.py, computed as their queries compute them): power over time, energy
per day (from the meters and from the devices' statistics), temperature against setpoint
per room across all systems, and state timelines.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from collector.outputs import report_data as data

log = logging.getLogger(__name__)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px;
       color: #222; background: #fafafa; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
td, th { border: 1px solid #ccc; padding: .2rem .6rem; text-align: left; }
td.n { text-align: right; }
.plot { background: #fff; border: 1px solid #ddd; margin: .5rem 0; }
.note { color: #666; font-size: .9rem; }
"""
#: Colours of state labels: one per label, in the order labels appear.
_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2",
            "#ff9da6", "#9d755d", "#bab0ac", "#1f3b5c", "#8c6d00", "#2f6b2a", "#7a1f3d",
            "#5b5bd6", "#00a3a3")


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      legend={"font": {"size": 10}}, template="plotly_white")
    fig.update_yaxes(title_text=y_title)
    return fig


def _local(times: Sequence[datetime], tz: tzinfo) -> list[str]:
    """Times as the zone's wall clock: plotly.js shows a time as written, ignoring offsets."""
    return [t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") for t in times]


def _name(text: str) -> str:
    """A device's name as plotly shows text: its markup tags (<b>, <br>) kept as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mode(s: data.Series) -> str:
    """Lines, with markers where a series is short (a single point draws no line)."""
    return "lines+markers" if len(s.times) <= 60 else "lines"


def _lines(series: Sequence[data.Series], title: str, y_title: str, tz: tzinfo) -> go.Figure:
    fig = go.Figure([go.Scatter(x=_local(s.times, tz), y=list(s.values), name=_name(s.name),
                                mode=_mode(s), marker={"size": 4}) for s in series])
    return _layout(fig, title, y_title)


def _bars(series: Sequence[data.Series], title: str, tz: tzinfo) -> go.Figure:
    fig = go.Figure([go.Bar(x=[t.astimezone(tz).strftime("%Y-%m-%d") for t in s.times],
                            y=list(s.values), name=_name(s.name)) for s in series])
    # side by side, not stacked: a main meter and the sub-meters behind it would add up twice
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category")
    return _layout(fig, title, "Wh")


def _climate(series: Sequence[data.Series], tz: tzinfo) -> go.Figure:
    rooms = sorted({s.group for s in series})
    fig = make_subplots(rows=len(rooms), cols=1, shared_xaxes=True,
                        subplot_titles=[_name(r) for r in rooms],
                        vertical_spacing=min(0.08, 0.4 / len(rooms)))
    for row, room in enumerate(rooms, 1):
        for s in series:
            if s.group != room:
                continue
            setpoint = " · setpoint · " in s.name
            fig.add_trace(go.Scatter(
                x=_local(s.times, tz), y=list(s.values), mode=_mode(s), marker={"size": 4},
                name=_name(s.name.removeprefix(f"{room} · ")),
                line={"dash": "dash" if setpoint else "solid",
                      "shape": "hv" if setpoint else "linear"},
                legendgroup=room, legendgrouptitle_text=_name(room)), row=row, col=1)
        fig.update_yaxes(title_text="°C", row=row, col=1)
    return _layout(fig, "Temperature (solid) and target setpoint (dashed) per room", "°C",
                   height=max(420, 230 * len(rooms)))


def _timelines(segments: Sequence[data.Segment], tz: tzinfo) -> go.Figure:
    colours: dict[str, str] = {}
    by_label: dict[str, list[data.Segment]] = {}
    for seg in segments:
        colours.setdefault(seg.label, _PALETTE[len(colours) % len(_PALETTE)])
        by_label.setdefault(seg.label, []).append(seg)
    fig = go.Figure([
        go.Bar(base=_local([s.start for s in segs], tz),
               x=[(s.end - s.start).total_seconds() * 1000 for s in segs],
               y=[_name(s.series) for s in segs], orientation="h", name=_name(label),
               marker_color=colours[label],
               hovertemplate="%{y}: " + _name(label).replace("%", "%%") + "<extra></extra>")
        for label, segs in by_label.items()
    ])
    rows = len({s.series for s in segments})
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, "State timelines", "", height=max(300, 120 + 26 * rows))


def _plot(fig: go.Figure, div_id: str) -> str:
    # "<" escaped: device names are text from devices, never markup or script
    spec = fig.to_json().replace("<", "\\u003c")
    return (f'<div class="plot" id="{div_id}"></div>\n<script>(function () {{ '
            f"var f = {spec}; Plotly.newPlot('{div_id}', f.data, f.layout, "
            "{responsive: true, displaylogo: false}); })();</script>")


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{v}</td>' if isinstance(v, int) else f"<td>{html.escape(str(v))}</td>"
            for v in row) + "</tr>"
        for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def sections(store_path: Path, tz: tzinfo) -> list[tuple[str, str, go.Figure | None]]:
    """(title, note, figure or None when there is nothing to plot) for each plot."""
    with data.connect(store_path) as db:
        power = data.power(db)
        stats = data.energy_stats_per_day(db, tz)
        meter = data.energy_meter_per_day(db, tz)
        climate = data.climate(db)
        segments = data.timelines(db)
    return [
        ("Power over time", "Mean power per device and interval; FRITZ! groups left out.",
         _lines(power, "Power over time", "W", tz) if power else None),
        ("Energy per day (device statistics)",
         f"The daily totals the devices report, per calendar day in {tz}.",
         _bars(stats, "Energy per day (device statistics)", tz) if stats else None),
        ("Energy per day (meter)",
         f"Difference of the last meter readings of consecutive calendar days in {tz}; a "
         "day needs the day before it.",
         _bars(meter, "Energy per day (meter)", tz) if meter else None),
        ("Temperature and setpoint per room",
         "Every system's thermometers and thermostats of a room together; readings without "
         "a room are left out.", _climate(climate, tz) if climate else None),
        ("State timelines", "Thermostat and HVAC modes, switches, windows, presence, VoIP "
         "registration.", _timelines(segments, tz) if segments else None),
    ]


def _write_private(out: Path, text: str) -> None:
    """``text`` into ``out``, readable by this user only, replaced whole (never torn)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)
        fh.write(text)
    os.replace(tmp, out)


def write_report(store_path: Path, out: Path, *, tz: tzinfo = UTC,
                 title: str = "Collected history") -> Path:
    """Write the report of the store at ``store_path`` to ``out`` (one HTML file)."""
    with data.connect(store_path) as db:
        devices = data.devices(db)
        counts = [c for c in data.counts(db) if c.source != "collector"]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from '
             f"{html.escape(str(store_path))}; times in {html.escape(str(tz))}.</p>",
             "<h2>Sources</h2>",
             _table(("source", "devices"), sorted(devices.items())),
             _table(("source", "measurement", "points", "devices"),
                    [(c.source, c.measurement, c.points, c.devices) for c in counts])]
    for n, (heading, note, fig) in enumerate(sections(store_path, tz)):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(f'<p class="note">{html.escape(note)}</p>')
        if fig is None:
            parts.append('<p class="note">Nothing collected for this plot.</p>')
        else:
            parts.append(_plot(fig, f"plot{n}"))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    _write_private(out, page)
    log.info("report written to %s", out)
    return out
