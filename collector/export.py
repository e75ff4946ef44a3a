"""``collector export``: one measurement from the configured store to CSV or Parquet.

Rows carry the UTC timestamp, every tag, the value and its unit from the schema table.
pandas is imported only here (and only for Parquet and ``to_dataframe``), never by the
daemon. InfluxDB is asked with the store's own TLS settings (``verify_tls``, ``ca_file``);
its errors name the server by ``safe_url`` (no credentials, no query values) and pass
through ``redact``, since they are printed, not logged.
"""

from __future__ import annotations

import csv
import re
import ssl
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from collector.config import Config, InfluxConfig
from collector.errors import CollectorError, ConfigError, StoreUnavailable
from collector.logs import redact, safe_url
from collector.schema import BASE_TAGS, BY_NAME

Row = tuple[int, dict[str, str], float, str | None]
_REL = re.compile(r"^(\d+)([smhdw])$")
_REL_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, *, now: datetime | None = None) -> int | None:
    """'2026-11-01', '2026-11-01T12:00:00+01:00', or '7d' (ago) -> epoch ns."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    if m := _REL.match(text.strip()):
        ts = now - timedelta(seconds=int(m.group(1)) * _REL_S[m.group(2)])
    else:
        try:
            ts = datetime.fromisoformat(text)
        except ValueError as err:
            raise ConfigError(f"--from/--to: {text!r} is not an ISO date/time or e.g. 7d") from err
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000


def _sqlite_rows(config: Config, measurement: str, start: int | None, end: int | None,
                 device: str | None) -> Iterator[Row]:
    from collector.stores.sqlite import SqliteStore

    store = SqliteStore(config.store.path)
    try:
        yield from store.query(measurement, start, end, device)
    finally:
        store.close()


def _where(ic: InfluxConfig) -> str:
    return f"InfluxDB at {safe_url(ic.url)}"


def _said(ic: InfluxConfig, text: str) -> str:
    """A server's or library's message, safe to print."""
    return redact(text.replace(ic.url, safe_url(ic.url)))[:300]


def _verify(ic: InfluxConfig) -> ssl.SSLContext | bool:
    """What httpx verifies the server with, as the store does."""
    from collector.stores.influx_v1 import tls_verify

    try:
        return tls_verify(ic.verify_tls, str(ic.ca_file) if ic.ca_file else None)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"influxdb.ca_file: cannot load {ic.ca_file}: {err}") from None


def _influx_v1_rows(config: Config, measurement: str, start: int | None, end: int | None,
                    device: str | None) -> Iterator[Row]:
    ic = config.influxdb
    assert ic is not None and ic.database
    where = []
    if start is not None:
        where.append(f"time >= {start}")
    if end is not None:
        where.append(f"time < {end}")
    if device is not None:
        d = device.replace("\\", "\\\\").replace("'", "\\'")
        where.append(f"(\"device\" = '{d}' OR \"device_id\" = '{d}')")
    m = measurement.replace('"', '\\"')
    q = f'SELECT * FROM "{m}"' + (f" WHERE {' AND '.join(where)}" if where else "")  # noqa: S608
    auth = (ic.username, ic.password.get_secret_value()) if ic.username and ic.password else None
    try:
        resp = httpx.post(
            f"{ic.url.rstrip('/')}/query",
            data={"q": q, "db": ic.database, "epoch": "ns"},
            auth=auth, timeout=ic.timeout, verify=_verify(ic),
        )
    except httpx.HTTPError as err:
        raise StoreUnavailable(
            f"{_where(ic)}: {type(err).__name__}: {_said(ic, str(err))}") from None
    if resp.status_code != 200:
        raise CollectorError(f"{_where(ic)}: query failed: HTTP {resp.status_code}: "
                             f"{_said(ic, resp.text)}")
    try:
        results = resp.json().get("results", [])
    except ValueError:
        raise CollectorError(f"{_where(ic)}: query answer is not JSON: "
                             f"{_said(ic, resp.text[:100])}") from None
    for result in results:
        if "error" in result:
            raise CollectorError(f"{_where(ic)}: query failed: {_said(ic, str(result['error']))}")
        for series in result.get("series", []):
            cols = series["columns"]
            for values in series["values"]:
                rec = dict(zip(cols, values, strict=True))
                t = int(rec.pop("time"))
                value = rec.pop("value", None)
                label = rec.pop("label", None)
                if value is None:
                    continue
                tags = {k: str(v) for k, v in rec.items() if v is not None}
                yield t, tags, float(value), label


def _influx_v2_rows(config: Config, measurement: str, start: int | None, end: int | None,
                    device: str | None) -> Iterator[Row]:
    from influxdb_client.client.influxdb_client import InfluxDBClient

    ic = config.influxdb
    assert ic is not None and ic.token and ic.bucket
    start_s = "0" if start is None else str(start // 1_000_000_000)
    stop_s = "now()" if end is None else str(end // 1_000_000_000)
    flux = (
        f'from(bucket: "{ic.bucket}") |> range(start: {start_s}, stop: {stop_s})'
        f' |> filter(fn: (r) => r._measurement == "{measurement}")'
        ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
    )
    client = InfluxDBClient(url=ic.url, token=ic.token.get_secret_value(), org=ic.org or "",
                            verify_ssl=ic.verify_tls, timeout=int(ic.timeout * 1000),
                            ssl_ca_cert=str(ic.ca_file) if ic.ca_file else None)
    try:
        with client:
            yield from _v2_records(client, flux, device)
    except Exception as err:  # the client's own errors (urllib3, ApiException) name the URL
        raise StoreUnavailable(
            f"{_where(ic)}: {type(err).__name__}: {_said(ic, str(err))}") from None


def _v2_records(client: Any, flux: str, device: str | None) -> Iterator[Row]:
    for record in client.query_api().query_stream(flux):
        vals: dict[str, Any] = dict(record.values)
        tags = {k: str(v) for k, v in vals.items()
                if not k.startswith("_") and k not in ("result", "table", "value", "label")}
        if device is not None and device not in (tags.get("device"), tags.get("device_id")):
            continue
        ts: datetime = vals["_time"]
        t = int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000
        yield t, tags, float(vals["value"]), vals.get("label")


def rows(config: Config, measurement: str, *, start: int | None = None, end: int | None = None,
         device: str | None = None) -> Iterator[Row]:
    if measurement not in BY_NAME:
        raise ConfigError(f"--measurement: unknown measurement {measurement!r}; "
                          f"known: {', '.join(BY_NAME)}")
    if config.store.kind == "sqlite" or config.influxdb is None:
        return _sqlite_rows(config, measurement, start, end, device)
    if config.influxdb.api == "v1":
        return _influx_v1_rows(config, measurement, start, end, device)
    return _influx_v2_rows(config, measurement, start, end, device)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000).isoformat().replace("+00:00", "Z")


def write_csv(measurement: str, data: Iterable[Row], out: IO[str]) -> int:
    """CSV with columns time, the base tags, the other tags (sorted), value, unit, label."""
    unit = BY_NAME[measurement].unit
    materialised = list(data)
    extra = sorted({k for _, tags, _, _ in materialised for k in tags} - set(BASE_TAGS))
    writer = csv.writer(out)
    writer.writerow(["time", *BASE_TAGS, *extra, "value", "unit", "label"])
    for t, tags, value, label in materialised:
        writer.writerow([iso(t), *(tags.get(k, "") for k in BASE_TAGS),
                         *(tags.get(k, "") for k in extra), repr(value), unit, label or ""])
    return len(materialised)


def to_dataframe(measurement: str, data: Iterable[Row]) -> Any:
    import pandas as pd

    records = [{"time": pd.Timestamp(t, unit="ns", tz="UTC"), **tags, "value": value,
                "unit": BY_NAME[measurement].unit, "label": label}
               for t, tags, value, label in data]
    return pd.DataFrame.from_records(records)


def export_measurement(config: Config, measurement: str, *, start: str | None, end: str | None,
                       device: str | None, fmt: str = "csv", out: Path | None = None) -> int:
    data = rows(config, measurement, start=parse_time(start), end=parse_time(end), device=device)
    if fmt == "parquet":
        if out is None:
            raise ConfigError("--format parquet needs --out FILE")
        frame = to_dataframe(measurement, data)
        frame.to_parquet(out)
        return len(frame)
    if out is None:
        return write_csv(measurement, data, sys.stdout)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        return write_csv(measurement, data, fh)
