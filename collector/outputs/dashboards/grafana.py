"""Grafana JSON pieces: InfluxQL queries, panels, variables, value mappings, unit ids.

Everything is built from the schema table (collector/schema.py): a query names a
measurement of the table, a panel's unit is the Grafana id of the measurement's unit, a
state panel's value mappings are the state's codes and labels. The JSON is plain dicts in
the shape of Grafana's dashboard model (schemaVersion 39, Grafana 10/11).

Queries are raw InfluxQL that runs unchanged on InfluxDB 1.x (``/query``), 2.x (the v1
``/query`` endpoint through the bucket's DBRP mapping) and 3.x: no subqueries, no
``top()``, no ``INTO``; ranking and merging happen in Grafana transformations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.schema import BASE_TAGS, BY_NAME, OPTIONAL_TAGS, STATE_BY_NAME

#: The provisioned datasource (dashboards/provisioning/datasources/influxdb.yml).
DATASOURCE_UID = "influxdb"
DATASOURCE: dict[str, str] = {"type": "influxdb", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39

#: Schema unit -> Grafana unit id. A unit missing here stops the generator, so a new
#: unit in the schema cannot be shown without one.
UNIT_IDS: dict[str, str] = {
    "°C": "celsius",
    "%": "percent",
    "W": "watt",
    "Wh": "watth",
    "V": "volt",
    "lx": "lux",
    "ppm": "ppm",
    "s": "s",
    "count": "short",
    "code": "none",
    "": "short",
}

#: Tags the dashboard variables filter on.
VARIABLE_TAGS: tuple[str, ...] = ("site", "room", "device")


def unit_id(measurement: str) -> str:
    unit = BY_NAME[measurement].unit
    try:
        return UNIT_IDS[unit]
    except KeyError:
        raise ValueError(
            f"measurement {measurement!r}: unit {unit!r} has no Grafana unit id in UNIT_IDS"
        ) from None


def tags_of(measurement: str) -> set[str]:
    """Every tag a point of ``measurement`` may carry."""
    return {*BASE_TAGS, *OPTIONAL_TAGS, *(k for k, _ in BY_NAME[measurement].tags)}


@dataclass(frozen=True, slots=True)
class Query:
    """One InfluxQL query of a panel."""

    measurement: str
    select: str = 'mean("value")'
    #: Extra conditions, ANDed after the time filter and the variables.
    where: tuple[str, ...] = ()
    #: Tags to group by (after ``time(...)`` when ``interval`` is set).
    group: tuple[str, ...] = ("device",)
    interval: str | None = "$__interval"
    fill: str | None = "none"
    #: ``tz('$timezone')``: calendar buckets in the dashboard's time zone.
    tz: bool = False
    #: Filter on the site/room/device variables.
    filters: bool = True
    #: Meter totals only: without the readings of FRITZ! groups (``scope = group``, they
    #: repeat their members') and, where the schema gives the measurement a ``tariff``
    #: tag, without the per-tariff indexes (the total has no ``tariff``).
    totals: bool = False
    #: The ``state`` name whose value mappings this query's series get.
    state: str | None = None
    alias: str = "$tag_device"
    table: bool = False
    #: The retention policy to read (``rollup_1h``: the hourly rollups); None: the default.
    retention: str | None = None

    def __post_init__(self) -> None:
        if self.measurement not in BY_NAME:
            raise ValueError(f"query: measurement {self.measurement!r} is not in the schema")
        unknown = set(self.group) - tags_of(self.measurement)
        if unknown:
            raise ValueError(f"query on {self.measurement}: unknown tags {sorted(unknown)}")
        if self.state is not None and self.state not in STATE_BY_NAME:
            raise ValueError(f"query: state {self.state!r} is not in the schema")

    def conditions(self) -> list[str]:
        out = ["$timeFilter"]
        if self.filters:
            out += [f'"{tag}" =~ /^${tag}$/' for tag in VARIABLE_TAGS]
        if self.totals:
            out.append("\"scope\" != 'group'")
            if "tariff" in dict(BY_NAME[self.measurement].tags):
                out.append("\"tariff\" = ''")
        if self.state is not None:
            out.append(f"\"name\" = '{self.state}'")
        return out + list(self.where)

    def text(self) -> str:
        # InfluxQL text for Grafana, built from the schema table: no outside input
        source = f'"{self.measurement}"'
        if self.retention is not None:
            source = f'"{self.retention}".{source}'
        q = f"SELECT {self.select} FROM {source} WHERE "  # noqa: S608
        q += " AND ".join(self.conditions())
        groups = [f"time({self.interval})"] if self.interval else []
        groups += [f'"{tag}"' for tag in self.group]
        if groups:
            q += " GROUP BY " + ", ".join(groups)
        if self.interval and self.fill:
            q += f" fill({self.fill})"
        if self.tz:
            q += " tz('$timezone')"
        return q

    def target(self, ref: str) -> dict[str, Any]:
        return {
            "refId": ref,
            "datasource": DATASOURCE,
            "rawQuery": True,
            "query": self.text(),
            "resultFormat": "table" if self.table else "time_series",
            "alias": self.alias,
        }


#: Colours of a state's codes in their order in the schema (Grafana named colours): no
#: green/red, which would call a code good or bad that the schema does not judge.
_STATE_COLOURS = ("blue", "orange", "purple", "yellow", "dark-blue", "dark-orange",
                  "dark-purple")


def state_mappings(state: str) -> list[dict[str, Any]]:
    """Grafana value mappings of a state: code -> label (codes with two meanings, such as
    the alert unit's 0 = clear / closed, show both)."""
    labels: dict[int, list[str]] = {}
    for code, label in STATE_BY_NAME[state].codes:
        labels.setdefault(code, []).append(label)
    options = {
        str(code): {"text": " / ".join(texts), "index": i,
                    "color": _STATE_COLOURS[i % len(_STATE_COLOURS)]}
        for i, (code, texts) in enumerate(labels.items())
    }
    return [{"type": "value", "options": options}]


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    kind: str  # timeseries | bars | stat | bargauge | state-timeline | table
    queries: tuple[Query, ...]
    description: str
    #: Grafana unit id; default: the unit of the queries' measurement.
    unit: str | None = None
    width: int = 12
    height: int = 8
    #: A relative time range of its own (``"1y"``: the last year, whatever the dashboard's).
    time_from: str | None = None
    #: Table panels: sort by this field, descending, and keep the first ``limit`` rows.
    sort_by: str | None = None
    limit: int | None = None
    decimals: int | None = None

    def grafana_unit(self) -> str:
        if self.unit is not None:
            return self.unit
        units = {unit_id(q.measurement) for q in self.queries}
        if len(units) != 1:
            raise ValueError(f"panel {self.title!r}: queries of different units {units}")
        return units.pop()

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        refs = [chr(ord("A") + i) for i in range(len(self.queries))]
        defaults: dict[str, Any] = {"unit": self.grafana_unit()}
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        overrides = [
            {"matcher": {"id": "byFrameRefID", "options": ref},
             "properties": [{"id": "mappings", "value": state_mappings(q.state)}]}
            for ref, q in zip(refs, self.queries, strict=True) if q.state is not None
        ]
        kind = "timeseries" if self.kind == "bars" else self.kind
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "targets": [q.target(ref) for ref, q in zip(refs, self.queries, strict=True)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides},
            "options": _options(self.kind),
        }
        if self.kind == "bars":
            defaults["custom"] = {"drawStyle": "bars", "fillOpacity": 80, "barAlignment": -1,
                                  "stacking": {"mode": "normal", "group": "A"}}
        if self.time_from is not None:
            panel["timeFrom"] = self.time_from
        if self.kind == "table":
            panel["transformations"] = _table_transformations(self.sort_by, self.limit)
        return panel


def _options(kind: str) -> dict[str, Any]:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if kind in ("stat", "bargauge"):
        return {"reduceOptions": reduce, "orientation": "horizontal"}
    if kind == "state-timeline":
        return {"showValue": "auto", "mergeValues": True, "rowHeight": 0.8}
    if kind == "table":
        return {"showHeader": True}
    return {"legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def _table_transformations(sort_by: str | None, limit: int | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"id": "merge", "options": {}}]
    if sort_by is not None:
        out.append({"id": "sortBy", "options": {"sort": [{"field": sort_by, "desc": True}]}})
    if limit is not None:
        out.append({"id": "limit", "options": {"limitField": limit}})
    return out


def tag_variable(name: str, label: str, where: tuple[str, ...],
                 all_value: str | None = None) -> dict[str, Any]:
    """A multi-value variable from ``SHOW TAG VALUES`` (refreshed with the time range:
    InfluxDB 3 looks only at the last day unless the query names a time range)."""
    query = f'SHOW TAG VALUES WITH KEY = "{name}" WHERE ' + " AND ".join(
        [*where, "$timeFilter"])
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "options": [],
    }


def text_variable(name: str, label: str, default: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "textbox",
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
    }


def custom_variable(name: str, label: str, options: tuple[tuple[str, str], ...],
                    description: str) -> dict[str, Any]:
    """A single-value variable of fixed (text, value) choices, the first one selected
    (Grafana's ``text : value`` form of a custom variable)."""
    (text, value), *_ = options
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "custom",
        "query": ", ".join(f"{t} : {v}" for t, v in options),
        "multi": False,
        "includeAll": False,
        "current": {"selected": True, "text": text, "value": value},
        "options": [{"selected": i == 0, "text": t, "value": v}
                    for i, (t, v) in enumerate(options)],
    }
