"""Downsampling on InfluxDB 1.x: the retention policies and continuous queries of the
rollups (collector/stores/rollups.py), applied idempotently, and the filling of the rollups
over a past range (what a backfill loaded: a continuous query only covers new data).

Every statement goes to ``POST /query`` with the store's credentials in a Basic header;
messages name the server without them (``safe_url``) and pass through ``redact``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from collector.config import InfluxConfig
from collector.errors import CollectorError, StoreError, StoreUnavailable
from collector.stores.read import safe_said, store_name, tls_for
from collector.stores.rollups import (
    ROLLUP_RP,
    Rollup,
    create_cq,
    quote,
    rollups,
    same_query,
    select_into,
)

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
#: Rollups are filled this much raw time per statement (a year of a big house at once would
#: make the server hold it all).
FILL_SPAN_NS = 7 * 86400 * _NS
#: Shard groups of the rollup policy: a year of hourly points in one shard group.
ROLLUP_SHARD = "52w"


class StoreSetupError(StoreError):
    """The store refused or could not answer a setup statement (the message says which)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the setup looked at: what it is, what was done, and details."""

    part: str
    result: str  # created | found | replaced | changed | not available | kept
    detail: str = ""


@dataclass
class SetupReport:
    store: str
    steps: list[Step] = field(default_factory=list)

    def add(self, part: str, result: str, detail: str = "") -> None:
        self.steps.append(Step(part, result, detail))


def influx_duration(seconds: float) -> str:
    """Seconds as an InfluxQL duration literal (whole seconds)."""
    return f"{round(seconds)}s"


def parse_influx_duration(text: str) -> float:
    """``168h0m0s``, ``0s`` (infinite: returns 0) ... -> seconds."""
    total, number = 0.0, ""
    units = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += float(number) * units[ch]
            number = ""
        else:
            raise ValueError(text)
    if number:
        raise ValueError(text)
    return total


def shown_duration(seconds: float) -> str:
    if seconds == 0:
        return "forever (INF)"
    days, rest = divmod(round(seconds), 86400)
    if not rest:
        return f"{days}d"
    return f"{round(seconds) // 3600}h" if not rest % 3600 else f"{round(seconds)}s"


class V1Admin:
    """Statements against one database of an InfluxDB 1.x server."""

    def __init__(self, ic: InfluxConfig, *, timeout: float | None = None) -> None:
        assert ic.database is not None
        self.ic = ic
        self.database: str = ic.database
        auth = (ic.username, ic.password.get_secret_value() if ic.password else "") \
            if ic.username else None
        self._client = httpx.Client(auth=auth, verify=tls_for(ic),
                                    timeout=timeout if timeout is not None else ic.timeout)
        self._url = ic.url.rstrip("/") + "/query"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> V1Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, q: str) -> list[dict[str, Any]]:
        """The series of the answer to one statement; a refusal is ``StoreSetupError``."""
        where = store_name(self.ic)
        try:
            resp = self._client.post(self._url, data={"q": q, "db": self.database,
                                                         "epoch": "ns"})
        except httpx.HTTPError as err:
            raise StoreUnavailable(
                f"{where}: {type(err).__name__}: {safe_said(self.ic, str(err))}") from None
        if resp.status_code in (401, 403):
            raise StoreSetupError(
                f"{where} refused the credentials of [influxdb] (HTTP {resp.status_code}); "
                "setting up downsampling needs an admin user (continuous queries and "
                "retention policies)")
        try:
            body = json.loads(resp.text)
        except ValueError:
            raise StoreSetupError(f"{where}: /query answered HTTP {resp.status_code} that is "
                                  f"not JSON: {safe_said(self.ic, resp.text[:100])}") from None
        if not isinstance(body, dict):
            raise StoreSetupError(f"{where}: /query answered {safe_said(self.ic, resp.text)}")
        if "error" in body:
            raise StoreSetupError(f"{where}: {safe_said(self.ic, str(body['error']))}")
        out: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                said = safe_said(self.ic, str(result["error"]))
                if said.startswith("database not found"):
                    raise StoreSetupError(
                        f"{where}: database {self.database!r} does not exist (create it with "
                        f"CREATE DATABASE; server said: {said})")
                raise StoreSetupError(f"{where}: {said} (statement: {q[:200]})")
            out += result.get("series", [])
        return out

    def retention_policies(self) -> dict[str, tuple[float, bool]]:
        """name -> (duration in seconds, 0 = infinite; whether it is the default)."""
        out: dict[str, tuple[float, bool]] = {}
        for series in self.query(f"SHOW RETENTION POLICIES ON {quote(self.database)}"):
            cols = series["columns"]
            for row in series.get("values") or []:
                cells = dict(zip(cols, row, strict=False))
                try:
                    duration = parse_influx_duration(str(cells["duration"]))
                except (KeyError, ValueError):
                    raise StoreSetupError(f"{store_name(self.ic)}: SHOW RETENTION POLICIES "
                                          f"answered an unreadable row {row!r}") from None
                out[str(cells["name"])] = (duration, bool(cells.get("default")))
        return out

    def raw_policy(self, policies: dict[str, tuple[float, bool]]) -> str:
        """The retention policy the collector writes raw points to."""
        if self.ic.retention_policy:
            if self.ic.retention_policy not in policies:
                raise StoreSetupError(
                    f"{store_name(self.ic)}: influxdb.retention_policy "
                    f"{self.ic.retention_policy!r} does not exist on database "
                    f"{self.database!r} (there: {', '.join(sorted(policies)) or 'none'})")
            return self.ic.retention_policy
        default = [name for name, (_, is_default) in policies.items() if is_default]
        if not default:
            raise StoreSetupError(f"{store_name(self.ic)}: database {self.database!r} has no "
                                  "default retention policy; name one as "
                                  "influxdb.retention_policy")
        return default[0]

    def continuous_queries(self) -> dict[str, str]:
        """name -> text of the continuous queries of the database."""
        out: dict[str, str] = {}
        for series in self.query("SHOW CONTINUOUS QUERIES"):
            if series.get("name") != self.database:
                continue
            cols = series["columns"]
            for row in series.get("values") or []:
                cells = dict(zip(cols, row, strict=False))
                out[str(cells.get("name"))] = str(cells.get("query"))
        return out


def setup_v1(ic: InfluxConfig) -> SetupReport:
    """Retention policies and continuous queries of the rollups; a second run finds them
    all and changes nothing."""
    with V1Admin(ic) as admin:
        report = SetupReport(f"{store_name(ic)}, database {admin.database!r}")
        policies = admin.retention_policies()
        raw = admin.raw_policy(policies)
        _raw_retention(admin, report, raw, policies[raw][0])
        if ROLLUP_RP in policies:
            report.add(f"retention policy {ROLLUP_RP}", "found",
                       f"rollups kept {shown_duration(policies[ROLLUP_RP][0])}")
        else:
            admin.query(f"CREATE RETENTION POLICY {quote(ROLLUP_RP)} ON {quote(admin.database)} "
                        f"DURATION INF REPLICATION 1 SHARD DURATION {ROLLUP_SHARD}")
            report.add(f"retention policy {ROLLUP_RP}", "created", "rollups kept forever (INF)")
        existing = admin.continuous_queries()
        for r in rollups():
            text = create_cq(r, admin.database, raw)
            part = f"continuous query {r.name}"
            detail = _describe(r)
            if r.name in existing and same_query(text, existing[r.name]):
                report.add(part, "found", detail)
                continue
            if r.name in existing:
                admin.query(f"DROP CONTINUOUS QUERY {quote(r.name)} ON {quote(admin.database)}")
            admin.query(text)
            report.add(part, "replaced" if r.name in existing else "created", detail)
    return report


def _describe(r: Rollup) -> str:
    fields = ", ".join(f"{agg}" for agg, _, _ in r.fields)
    if r.every == "1h":
        return f"{r.measurement}: {fields} per hour"
    return f"{r.measurement}: copied as written"


def _raw_retention(admin: V1Admin, report: SetupReport, raw: str, current: float) -> None:
    wanted = admin.ic.raw_retention
    part = f"retention policy {raw} (raw data)"
    if wanted is None or round(wanted) == round(current):
        report.add(part, "found", f"raw data kept {shown_duration(current)}" + (
            "" if wanted is not None else " (influxdb.raw_retention not set: left as it is)"))
        return
    admin.query(f"ALTER RETENTION POLICY {quote(raw)} ON {quote(admin.database)} "
                f"DURATION {influx_duration(wanted)}")
    report.add(part, "changed", f"raw data kept {shown_duration(wanted)} "
               f"(was {shown_duration(current)})")


def fill_ranges(start_ns: int, end_ns: int, every_ns: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` widened to whole buckets of ``every_ns`` and cut into spans of at
    most ``FILL_SPAN_NS`` (whole buckets each)."""
    lo = start_ns - start_ns % every_ns
    hi = end_ns if end_ns % every_ns == 0 else end_ns + every_ns - end_ns % every_ns
    span = max(every_ns, FILL_SPAN_NS - FILL_SPAN_NS % every_ns)
    while lo < hi:
        yield lo, min(hi, lo + span)
        lo += span


def fill_v1(ic: InfluxConfig, start_ns: int, end_ns: int) -> int:
    """Compute every rollup over ``[start_ns, end_ns)`` (widened to whole hours) from the raw
    points, as the continuous queries would have; returns the rollup points written.

    Needs the rollup retention policy (``collector store setup``); without it the error
    says so."""
    # every rollup has the same timeout as a write would: a big fill takes longer
    with V1Admin(ic, timeout=max(ic.timeout, 300.0)) as admin:
        policies = admin.retention_policies()
        if ROLLUP_RP not in policies:
            raise StoreSetupError(f"{store_name(ic)}: no retention policy {ROLLUP_RP!r} on "
                                  f"database {admin.database!r}: run `collector store setup`")
        raw = admin.raw_policy(policies)
        written = 0
        for r in rollups():
            every_ns = _HOUR_NS if r.every == "1h" else 60 * _NS
            first = admin.query(
                f"SELECT {quote('value')} FROM {quote(raw)}.{quote(r.measurement)} "  # noqa: S608
                f"WHERE time >= {start_ns} AND time < {end_ns} LIMIT 1")
            if not first:
                continue  # no raw data in the range
            begin = min(int(s["values"][0][0]) for s in first if s.get("values"))
            for lo, hi in fill_ranges(max(start_ns, begin), end_ns, every_ns):
                where = f"time >= {lo} AND time < {hi}"
                for series in admin.query(select_into(r, admin.database, raw, where=where)):
                    for row in series.get("values") or []:
                        written += int(row[1])
        return written


def has_rollups(ic: InfluxConfig) -> bool:
    """Whether the database has the rollup retention policy (unreachable: False)."""
    try:
        with V1Admin(ic) as admin:
            return ROLLUP_RP in admin.retention_policies()
    except CollectorError:
        return False
