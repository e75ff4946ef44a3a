"""Downsampling: the rollups of every measurement, derived from the schema table's kinds.

One rollup per measurement of ``collector.schema.TABLE``, in the retention policy
``rollup_1h`` (InfluxDB 1.x) or the bucket ``<bucket>_rollup_1h`` (2.x), under the same
measurement name and with the same tags as the raw points:

* a gauge: per hour its ``mean``, ``min``, ``max``, ``sum``, ``count`` and ``last``. A
  coarser mean is ``sum("sum") / sum("count")``: the mean of the raw points, whatever the
  number of readings in each hour (a mean of hourly means would weigh a sparse hour like a
  full one); ``last`` gives the newest reading without reading every raw point;
* a counter: the ``last`` reading of each hour, as ``value`` (a difference of last
  readings is the same from raw points and from the rollup);
* a state: the last ``value`` and ``label`` of each hour;
* a period total: copied as written (``value``, at its own timestamp: the start of a day or
  month in the site's zone, a whole minute in every zone). They are few; the copy only
  keeps them when raw data expires.

The InfluxQL ``SELECT ... INTO`` of a rollup is the body of its continuous query and also
what fills the rollup over a past range (a continuous query only covers the recent past:
``RESAMPLE EVERY 15m FOR 3h`` recomputes the current hour and the two before, every 15
minutes; period totals arrive late, up to a month for the running month's total, and are
copied over the last 5 weeks every hour).
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.schema import TABLE, Kind

#: The retention policy (1.x) of the rollups, and the name the 2.x rollup bucket is mapped
#: to for InfluxQL (DBRP): dashboards read ``"rollup_1h"."<measurement>"`` on both.
ROLLUP_RP = "rollup_1h"
#: What every continuous query and task of the collector is named after.
PREFIX = "collector_rollup"

_GAUGE = (("mean", "mean"), ("min", "min"), ("max", "max"), ("sum", "sum"),
          ("count", "count"), ("last", "last"))


@dataclass(frozen=True, slots=True)
class Rollup:
    measurement: str
    kind: Kind
    #: The bucket of the rollup: ``1h``, or ``1m`` for period totals copied as written.
    every: str
    #: (aggregate, raw field, rollup field) per rollup field.
    fields: tuple[tuple[str, str, str], ...]
    #: How often the continuous query (or task) runs, and how far back each run looks.
    resample_every: str
    resample_for: str

    @property
    def name(self) -> str:
        return f"{PREFIX}_{self.measurement}"


def _rollup(measurement: str, kind: Kind) -> Rollup:
    if kind is Kind.GAUGE:
        return Rollup(measurement, kind, "1h", tuple((agg, "value", out) for agg, out in _GAUGE),
                      "15m", "3h")
    if kind is Kind.COUNTER:
        return Rollup(measurement, kind, "1h", (("last", "value", "value"),), "15m", "3h")
    if kind is Kind.STATE:
        return Rollup(measurement, kind, "1h",
                      (("last", "value", "value"), ("last", "label", "label")), "15m", "3h")
    # period totals: as written (the 1-minute bucket keeps their own timestamps)
    return Rollup(measurement, kind, "1m", (("last", "value", "value"),), "1h", "5w")


def rollups() -> tuple[Rollup, ...]:
    """Every measurement's rollup, from the schema table."""
    return tuple(_rollup(m.name, m.kind) for m in TABLE)


def quote(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def select_into(r: Rollup, database: str, raw_rp: str, *, where: str = "") -> str:
    """The ``SELECT ... INTO`` that computes ``r`` from the raw points (``where``: a time
    range, for filling the past; empty inside a continuous query)."""
    db = quote(database)
    fields = ", ".join(f"{agg}({quote(src)}) AS {quote(out)}" for agg, src, out in r.fields)
    cond = f" WHERE {where}" if where else ""
    return (f"SELECT {fields} INTO {db}.{quote(ROLLUP_RP)}.{quote(r.measurement)} "  # noqa: S608
            f"FROM {db}.{quote(raw_rp)}.{quote(r.measurement)}{cond} "
            f"GROUP BY time({r.every}), *")


def create_cq(r: Rollup, database: str, raw_rp: str) -> str:
    return (f"CREATE CONTINUOUS QUERY {quote(r.name)} ON {quote(database)} "
            f"RESAMPLE EVERY {r.resample_every} FOR {r.resample_for} "
            f"BEGIN {select_into(r, database, raw_rp)} END")


def same_query(ours: str, theirs: str) -> bool:
    """Whether the server's text of a continuous query is ``ours`` (the server prints
    identifiers unquoted where it can, and its own spacing)."""
    def norm(text: str) -> str:
        return " ".join(text.replace('"', "").split()).lower()

    return norm(ours) == norm(theirs)


# --- InfluxDB 2.x: Flux ---------------------------------------------------------------------


def flux_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flux_body(r: Rollup, bucket: str, rollup_bucket: str, org: str, start: str,
              stop: str | None = None) -> str:
    """The Flux that computes ``r`` from ``bucket`` into ``rollup_bucket`` over
    ``range(start, stop)`` (Flux time expressions)."""
    src, dst = flux_string(bucket), flux_string(rollup_bucket)
    stop_arg = f", stop: {stop}" if stop else ""
    out = []
    for i, (agg, field, name) in enumerate(r.fields):
        read = (f"from(bucket: {src}) |> range(start: {start}{stop_arg}) |> filter(fn: (r) => "
                f"r._measurement == {flux_string(r.measurement)} and r._field == "
                f"{flux_string(field)})")
        if r.kind is Kind.PERIOD:
            shaped = read
        else:
            shaped = (f"{read} |> aggregateWindow(every: {r.every}, fn: {agg}, "
                      f'createEmpty: false, timeSrc: "_start")')
            if name != field:
                shaped += f" |> set(key: \"_field\", value: {flux_string(name)})"
            if agg == "count":  # a count is an integer in Flux: rollup fields are floats
                shaped += " |> toFloat()"
        out.append(f"r{i} = {shaped} |> to(bucket: {dst}, org: {flux_string(org)})")
    return "\n".join(out) + "\n"


def task_flux(r: Rollup, bucket: str, rollup_bucket: str, org: str) -> str:
    """The whole script of the 2.x task of ``r``: its options and its body."""
    start = (f"date.truncate(t: -{r.resample_for}, unit: {r.every})" if r.kind is not Kind.PERIOD
             else f"-{r.resample_for}")
    return (f'import "date"\n\noption task = {{name: {flux_string(r.name)}, '
            f"every: {r.resample_every}}}\n\n" + flux_body(r, bucket, rollup_bucket, org, start))
