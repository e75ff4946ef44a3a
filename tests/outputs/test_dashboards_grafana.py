"""Grafana's interpolation of InfluxQL dashboard queries, for the tests that run them.

What Grafana does before a panel query reaches InfluxDB: ``$timeFilter`` becomes
``time >= <from>ms and time <= <to>ms`` (the InfluxQL backend's form), ``$__interval`` the
range divided by the panel's data points, rounded to Grafana's steps, ``$__interval_ms``
the same in milliseconds, and a variable of several values the regex ``(a|b)`` of its
regex-escaped values; a custom "All" value goes in unescaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.influxd import Influxd

ROOT = Path(__file__).resolve().parents[2]
#: what the panels' maxDataPoints come to on a common screen
MAX_DATA_POINTS = 1000
#: (upper bound in ms, Grafana's interval) of its interval rounding (kbn.roundInterval)
_ROUNDING: tuple[tuple[int, int], ...] = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10_000), (17500, 15_000), (25000, 20_000),
    (45000, 30_000), (90000, 60_000), (210_000, 120_000), (450_000, 300_000),
    (1_050_000, 600_000), (2_100_000, 900_000), (4_500_000, 1_800_000),
    (9_000_000, 3_600_000), (17_280_000, 7_200_000), (34_560_000, 21_600_000),
    (64_800_000, 43_200_000), (604_800_000, 86_400_000), (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)



def load(name: str) -> dict[str, Any]:
    data = json.loads((ROOT / "dashboards" / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interval_ms(range_ms: int, max_points: int = MAX_DATA_POINTS) -> int:
    raw = range_ms / max_points
    for bound, rounded in _ROUNDING:
        if raw < bound:
            return rounded
    return 365 * 86_400_000


def interval_text(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def regex_escape(value: str) -> str:
    """Grafana's regex escaping of a variable value (``/`` too: it ends an InfluxQL regex)."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


@dataclass
class Grafana:
    """The interpolation Grafana does before a query goes to InfluxDB."""

    start: datetime
    end: datetime
    #: query variables: the values selected (None: "All")
    selected: dict[str, list[str] | None] = field(default_factory=dict)
    #: query variables: every value their own query gave
    options: dict[str, list[str]] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)

    def window(self, panel: dict[str, Any] | None) -> tuple[int, int]:
        start = self.start
        if panel is not None and panel.get("timeFrom"):
            amount, unit = int(panel["timeFrom"][:-1]), panel["timeFrom"][-1]
            days = {"d": 1, "y": 365}[unit] * amount
            start = self.end - timedelta(days=days)
        return int(start.timestamp() * 1000), int(self.end.timestamp() * 1000)

    def value(self, var: dict[str, Any]) -> str:
        name = var["name"]
        if var["type"] == "textbox":
            return self.text.get(name, var["query"])
        if var["type"] == "custom":  # one of fixed choices: the one selected
            return self.text.get(name, var["current"]["value"])
        chosen = self.selected.get(name)
        if chosen is None and var.get("allValue"):
            return str(var["allValue"])  # a custom "All" value goes in as it is
        values = self.options[name] if chosen is None else chosen
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    def interpolate(self, query: str, variables: Sequence[dict[str, Any]],
                    panel: dict[str, Any] | None = None) -> str:
        start_ms, end_ms = self.window(panel)
        step = interval_ms(end_ms - start_ms)
        out = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
        out = out.replace("$__interval_ms", str(step)).replace("$__interval",
                                                                interval_text(step))
        for var in sorted(variables, key=lambda v: -len(v["name"])):
            if var["name"] in self.options or var["type"] in ("textbox", "custom"):
                value = self.value(var)
                for form in (f"${{{var['name']}}}", f"[[{var['name']}]]", f"${var['name']}"):
                    out = out.replace(form, value)
        assert not re.search(r"(?<!\\)\$[{\w]|\[\[", out), out  # every reference replaced
        return out

    def resolve(self, influxd: Influxd, db: str, variables: Sequence[dict[str, Any]]) -> None:
        """Run the variable queries in order, as Grafana refreshes them on load."""
        for var in variables:
            if var["type"] != "query":
                continue
            rows = influxd.rows(self.interpolate(var["query"], variables), db)
            self.options[var["name"]] = sorted({r["value"] for r in rows})
            # none at all only where "All" has a value of its own (a site without rooms)
            assert self.options[var["name"]] or var.get("allValue"), var["name"]


def values(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[int, float]]]:
    """The series of an answer and its (time, number) pairs (every numeric column)."""
    (stmt,) = result["results"]
    assert "error" not in stmt, stmt
    series = stmt.get("series", [])
    pairs = []
    for s in series:
        for row in s["values"]:
            for col, cell in zip(s["columns"][1:], row[1:], strict=True):
                if isinstance(cell, int | float) and col != "label":
                    pairs.append((row[0], float(cell)))
    return series, pairs



def test_the_interval_is_rounded_as_grafana_rounds_it() -> None:
    day = 86_400_000
    assert interval_text(interval_ms(7 * day)) == "10m"  # 604.8 s per point
    assert interval_text(interval_ms(day)) == "1m"  # 86.4 s
    assert interval_text(interval_ms(30 * day)) == "30m"  # 2592 s
    assert interval_text(interval_ms(3_600_000)) == "5s"  # 3.6 s
    assert interval_text(interval_ms(365 * day)) == "6h"  # 31536 s
    assert interval_text(500) == "500ms"


def test_variables_go_in_as_grafana_puts_them() -> None:
    variables: list[dict[str, Any]] = [
        {"name": "site", "type": "query", "multi": True, "includeAll": True},
        {"name": "room", "type": "query", "multi": True, "includeAll": True,
         "allValue": ".*"},
        {"name": "timezone", "type": "textbox", "query": "Europe/Berlin"},
    ]
    start = datetime(2024, 6, 1, tzinfo=UTC)
    grafana = Grafana(start=start, end=start + timedelta(days=1),
                      options={"site": ["a.b", "c/d"], "room": ["x"]})
    query = ('SELECT * FROM "m" WHERE $timeFilter AND "site" =~ /^$site$/ AND "room" =~ '
             "/^${room}$/ GROUP BY time($__interval) tz('$timezone') -- $__interval_ms")
    assert grafana.interpolate(query, variables) == (
        'SELECT * FROM "m" WHERE time >= 1717200000000ms and time <= 1717286400000ms AND '
        '"site" =~ /^(a\\.b|c\\/d)$/ AND "room" =~ /^.*$/ GROUP BY time(1m) '
        "tz('Europe/Berlin') -- 60000")
    grafana.selected = {"site": ["a.b"], "room": ["x"]}
    assert grafana.interpolate('"site" =~ /^$site$/ AND "room" =~ /^$room$/', variables) == \
        '"site" =~ /^a\\.b$/ AND "room" =~ /^x$/'
