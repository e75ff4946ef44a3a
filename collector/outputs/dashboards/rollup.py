"""Panels on the hourly rollups (collector/stores/rollups.py): which query reads them, and
when.

A panel whose buckets are an hour or longer gives the same numbers from the rollups as from
the raw readings, from a fraction of the points: a gauge's mean is ``sum("sum") /
sum("count")`` of its hours (the mean of the raw readings, however many each hour has), its
newest reading the newest hour's ``last``; a counter's last reading, a state's code and
label and the period totals are stored under their own names. Each such panel carries both
queries, and InfluxQL drops the one whose condition is false before reading anything:

* interval-driven panels (``GROUP BY time($__interval)``): raw below a 1 h interval,
  rollups from 1 h on (ranges of about 52 days and more at Grafana's 1,000 points);
* daily and monthly panels: the rollups always.

The dashboard variable ``rollups`` (``on``/``off``) turns them off, for InfluxDB 3 and for
stores without ``collector store setup``: then every panel reads raw data. Its value is the
retention policy the rollup queries name: ``rollup_1h``, or ``autogen`` when off (InfluxDB
resolves the policy of a query before it looks at its conditions, so the rollup queries
must name one that exists: ``autogen``, the default of InfluxDB 1.x databases and of the
DBRP mappings InfluxDB 2.x makes for its buckets, where they find no rollup fields).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from collector.outputs.dashboards.grafana import Query, custom_variable
from collector.schema import BY_NAME, Kind
from collector.stores.rollups import ROLLUP_RP

#: Grafana's interval (ms) from which the hourly rollups answer.
HOUR_MS = 3_600_000
#: The variable ``rollups``: its value is the retention policy the rollup queries read,
#: ``rollup_1h`` (on) or ``autogen`` (off: there they find no rollup fields and answer
#: nothing, where a missing ``rollup_1h`` would be an error).
ON = f"'$rollups' = '{ROLLUP_RP}'"
OFF = f"'$rollups' != '{ROLLUP_RP}'"
RAW_RP = "autogen"
FINE = f"($__interval_ms < {HOUR_MS} OR {OFF})"
COARSE = f"$__interval_ms >= {HOUR_MS} AND {ON}"

#: A gauge's raw aggregate -> the same from its hourly rollup.
_GAUGE = {
    'mean("value")': 'sum("sum") / sum("count")',
    'last("value")': 'last("last")',
    'max("value")': 'max("max")',
    'min("value")': 'min("min")',
}

INTERVAL_NOTE = (" Raw readings below a 1-hour interval; from 1 hour on (ranges of about 52 "
                 "days and more) the hourly rollups, with the same numbers (variable "
                 "Rollups = off: raw readings only).")
ROLLUP_NOTE = (" Read from the hourly rollups (retention policy rollup_1h), the same numbers "
               "as from the raw readings, at most 15 minutes behind them (variable Rollups "
               "= off: from the raw readings).")


def on_rollup(q: Query) -> Query:
    """``q`` on the hourly rollup of its measurement."""
    select = q.select
    if BY_NAME[q.measurement].kind is Kind.GAUGE:
        try:
            select = _GAUGE[q.select]
        except KeyError:
            raise ValueError(f"query on {q.measurement}: {q.select} has no form on the hourly "
                             "rollup") from None
    return replace(q, select=select, retention="$rollups")


def by_interval(*queries: Query) -> tuple[Query, ...]:
    """The raw queries (below 1 h intervals), then the same on the rollups (from 1 h on)."""
    return (*(replace(q, where=(*q.where, FINE)) for q in queries),
            *(replace(on_rollup(q), where=(*q.where, COARSE)) for q in queries))


def from_rollup(*queries: Query) -> tuple[Query, ...]:
    """The queries on the rollups, then the same on raw data (with the rollups off)."""
    return (*(replace(on_rollup(q), where=(*q.where, ON)) for q in queries),
            *(replace(q, where=(*q.where, OFF)) for q in queries))


def variable() -> dict[str, Any]:
    return custom_variable(
        "rollups", "Rollups", (("on", ROLLUP_RP), ("off", RAW_RP)),
        "on: panels read the hourly rollups that `collector store setup` creates where the "
        "numbers are the same; off: raw data only (InfluxDB 3, or a store without the setup)")
