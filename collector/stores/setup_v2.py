"""Downsampling on InfluxDB 2.x: a rollup bucket, its InfluxQL mapping and one task per
rollup (collector/stores/rollups.py), through influxdb-client's APIs, idempotently.

* the bucket ``<bucket>_rollup_1h``, kept forever;
* a DBRP mapping of it as database ``<bucket>``, retention policy ``rollup_1h``, so the
  InfluxQL dashboards read ``"rollup_1h"."<measurement>"`` as on 1.x;
* a task ``collector_rollup_<measurement>`` per measurement;
* with ``influxdb.raw_retention``: the raw bucket's retention rule.

InfluxDB 3 has no tasks, and InfluxDB 1.8 answers the v2 write API but has none either:
the setup says so (on 1.8: use ``api = "v1"``, which gets continuous queries).
"""

from __future__ import annotations

from typing import Any

from collector.config import InfluxConfig
from collector.errors import CollectorError, StoreUnavailable
from collector.stores.read import safe_said, store_name
from collector.stores.rollups import ROLLUP_RP, rollups, task_flux
from collector.stores.setup_v1 import SetupReport, StoreSetupError, shown_duration


def rollup_bucket(bucket: str) -> str:
    return f"{bucket}_{ROLLUP_RP}"


def _client(ic: InfluxConfig) -> Any:
    from influxdb_client.client.influxdb_client import InfluxDBClient

    assert ic.token is not None
    return InfluxDBClient(url=ic.url, token=ic.token.get_secret_value(), org=ic.org or "",
                          verify_ssl=ic.verify_tls, timeout=int(ic.timeout * 1000),
                          ssl_ca_cert=str(ic.ca_file) if ic.ca_file else None, retries=False)


def setup_v2(ic: InfluxConfig) -> SetupReport:
    assert ic.org is not None and ic.bucket is not None
    report = SetupReport(f"{store_name(ic)}, org {ic.org!r}, bucket {ic.bucket!r}")
    client = _client(ic)
    try:
        version = _call(ic, "/ping", client.version)
        if not _has_tasks(report, version):
            return report
        _setup(client, ic, report)
    finally:
        client.close()
    return report


def _has_tasks(report: SetupReport, version: str) -> bool:
    v = version.strip().lower().removeprefix("v")
    if v.startswith("3"):
        report.add("downsampling", "not available",
                   f"InfluxDB {version} has no tasks or continuous queries; the dashboards "
                   "and exports read raw data")
        return False
    if v.startswith("1."):
        report.add("downsampling", "not available",
                   f"InfluxDB {version} through its v2 API has no tasks; set "
                   'influxdb.api = "v1" (database, retention_policy) to get continuous '
                   "queries; the dashboards and exports read raw data")
        return False
    return True


def _call(ic: InfluxConfig, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One library call; its errors as ours, without the token."""
    from influxdb_client.rest import ApiException

    try:
        return fn(*args, **kwargs)
    except ApiException as err:
        status = int(err.status or 0)
        said = safe_said(ic, str(err.body or err.reason or ""))
        if status in (401, 403):
            raise StoreSetupError(
                f"{store_name(ic)}: {what}: the token was refused (HTTP {status}); setting "
                "up downsampling needs a token that may create buckets, DBRP mappings and "
                f"tasks in org {ic.org!r} ({said})") from None
        raise StoreSetupError(f"{store_name(ic)}: {what}: HTTP {status}: {said}") from None
    except CollectorError:
        raise
    except Exception as err:  # urllib3 and socket errors: the server is not there
        raise StoreUnavailable(
            f"{store_name(ic)}: {what}: {type(err).__name__}: {safe_said(ic, str(err))}"
        ) from None


def _setup(client: Any, ic: InfluxConfig, report: SetupReport) -> None:
    from influxdb_client.domain import (
        bucket_retention_rules,
        dbrp_create,
        task_create_request,
        task_update_request,
    )
    from influxdb_client.service import dbr_ps_service

    # the library's classes are untyped
    BucketRetentionRules: Any = bucket_retention_rules.BucketRetentionRules  # noqa: N806
    DBRPCreate: Any = dbrp_create.DBRPCreate  # noqa: N806
    TaskCreateRequest: Any = task_create_request.TaskCreateRequest  # noqa: N806
    DBRPsService: Any = dbr_ps_service.DBRPsService  # noqa: N806
    TaskUpdateRequest: Any = task_update_request.TaskUpdateRequest  # noqa: N806

    assert ic.org is not None and ic.bucket is not None
    orgs = _call(ic, "/api/v2/orgs", client.organizations_api().find_organizations, org=ic.org)
    if not orgs:
        raise StoreSetupError(f"{store_name(ic)}: org {ic.org!r} not found")
    org_id = orgs[0].id
    buckets = client.buckets_api()
    raw = _bucket(ic, buckets, ic.bucket, org_id)
    if raw is None:
        raise StoreSetupError(f"{store_name(ic)}: bucket {ic.bucket!r} of org {ic.org!r} not "
                              "found (create it, or fix influxdb.bucket)")
    current = _every(raw)
    part = f"bucket {ic.bucket} (raw data)"
    wanted = ic.raw_retention
    if wanted is None or round(wanted) == current:
        report.add(part, "found", f"raw data kept {shown_duration(current)}" + (
            "" if wanted is not None else " (influxdb.raw_retention not set: left as it is)"))
    else:
        raw.retention_rules = [BucketRetentionRules(type="expire", every_seconds=round(wanted))]
        _call(ic, "/api/v2/buckets", buckets.update_bucket, raw)
        report.add(part, "changed", f"raw data kept {shown_duration(wanted)} "
                   f"(was {shown_duration(current)})")
    name = rollup_bucket(ic.bucket)
    rolled = _bucket(ic, buckets, name, org_id)
    if rolled is None:
        rolled = _call(ic, "/api/v2/buckets", buckets.create_bucket, bucket_name=name,
                       org=ic.org, retention_rules=[], description="collector rollups")
        report.add(f"bucket {name}", "created", "rollups kept forever")
    else:
        report.add(f"bucket {name}", "found", f"rollups kept {shown_duration(_every(rolled))}")
    dbrps = DBRPsService(client.api_client)
    mapped = _call(ic, "/api/v2/dbrps", dbrps.get_dbr_ps, org_id=org_id, bucket_id=rolled.id)
    part = f"DBRP mapping {ic.bucket}/{ROLLUP_RP}"
    if any(m.database == ic.bucket and m.retention_policy == ROLLUP_RP
           for m in (mapped.content or [])):
        report.add(part, "found", f"InfluxQL reads bucket {name} as {ROLLUP_RP}")
    else:
        _call(ic, "/api/v2/dbrps", dbrps.post_dbrp, DBRPCreate(
            org_id=org_id, bucket_id=rolled.id, database=ic.bucket,
            retention_policy=ROLLUP_RP, default=False))
        report.add(part, "created", f"InfluxQL reads bucket {name} as {ROLLUP_RP}")
    tasks = client.tasks_api()
    for r in rollups():
        flux = task_flux(r, ic.bucket, name, ic.org)
        found = _call(ic, "/api/v2/tasks", tasks.find_tasks, name=r.name, org_id=org_id)
        part = f"task {r.name}"
        detail = f"every {r.resample_every}"
        if found and found[0].flux == flux:
            report.add(part, "found", detail)
        elif found:
            # flux only: the schedule is in the script's options (an ``every`` field
            # sent beside it would override them with the old one)
            _call(ic, "/api/v2/tasks", tasks.update_task_request, task_id=found[0].id,
                  task_update_request=TaskUpdateRequest(flux=flux, status="active"))
            report.add(part, "replaced", detail)
        else:
            _call(ic, "/api/v2/tasks", tasks.create_task, task_create_request=TaskCreateRequest(
                flux=flux, org_id=org_id, status="active",
                description=f"collector rollup of {r.measurement}"))
            report.add(part, "created", detail)


def _bucket(ic: InfluxConfig, buckets: Any, name: str, org_id: str) -> Any:
    found = _call(ic, "/api/v2/buckets", buckets.find_buckets, name=name, org_id=org_id)
    for b in found.buckets or []:
        if b.name == name:
            return b
    return None


def _every(bucket: Any) -> int:
    """The bucket's retention in seconds (0: forever)."""
    for rule in bucket.retention_rules or []:
        if rule.every_seconds:
            return int(rule.every_seconds)
    return 0


def fill_v2(ic: InfluxConfig, start_ns: int, end_ns: int) -> int:
    """Compute every rollup over ``[start_ns, end_ns)`` (widened to whole hours) with the
    tasks' Flux over that range; returns the number of Flux queries run."""
    from datetime import UTC, datetime

    from collector.stores.rollups import flux_body

    assert ic.org is not None and ic.bucket is not None
    hour = 3600 * 1_000_000_000
    lo, hi = start_ns - start_ns % hour, -(-end_ns // hour) * hour

    def rfc(ns: int) -> str:
        return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    client = _client(ic)
    try:
        query = client.query_api()
        done = 0
        for r in rollups():
            flux = flux_body(r, ic.bucket, rollup_bucket(ic.bucket), ic.org, rfc(lo), rfc(hi))
            _call(ic, "/api/v2/query", query.query, flux, org=ic.org)
            done += 1
        return done
    finally:
        client.close()
