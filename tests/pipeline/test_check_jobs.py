"""``collector check``'s job table: each job's last success, last error and error count from
the daemon's self-metrics, from hand-made rows, from the embedded store after a real daemon
run with a failing source, and from a real InfluxDB 1.x."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from collector.config import Config, InfluxConfig, StoreConfig, load_config
from collector.lineprotocol import encode_many
from collector.logs import register_secret
from collector.model import Reading, make_tags
from collector.pipeline.app import App, JobOutcome
from collector.pipeline.check_jobs import (
    JobHealth,
    job_health,
    job_names,
    read_job_health,
    table_rows,
)
from collector.pipeline.daemon import run
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.stores.read import Row
from tests.fake_influx2 import answering_flux
from tests.influxd import Influxd

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
S = 1_000_000_000
T = int(NOW.timestamp()) * S


def _row(job: str, seconds_ago: float, errors: float, label: str | None = None,
         metric: str = "errors") -> Row:
    return (T - int(seconds_ago * S), {"device": job, "metric": metric, "source": "collector"},
            errors, label)


def test_last_success_last_error_and_count_per_job() -> None:
    rows = [
        _row("fritzbox:home:poll", 300, 0.0),
        _row("fritzbox:home:poll", 240, 1.0, "TransientError: the box is busy (HTTP 503)"),
        _row("fritzbox:home:poll", 180, 2.0, "ParseError: a; ParseError: b"),
        _row("fritzbox:home:poll", 120, 0.0),
        _row("fritzbox:home:poll", 60, 0.0),
        _row("fritzbox:home:poll", 60, 7.0, metric="points"),  # not a run of its own
        _row("thinknx:villa:poll", 90, 0.0),
        _row("thinknx:villa:poll", 30, 1.0, "AuthError: refused (HTTP 401)"),
        _row("overkiz:old:events", 10, 1.0, "a job no longer configured"),
    ]
    jobs = ["fritzbox:home:poll", "fritzbox:home:stats", "thinknx:villa:poll"]
    got = job_health(rows, jobs)
    assert got == [
        JobHealth("fritzbox:home:poll", runs=5, errors=3, last_success_ns=T - 60 * S,
                  last_error_ns=T - 180 * S, last_error="ParseError: a; ParseError: b"),
        JobHealth("fritzbox:home:stats"),
        JobHealth("thinknx:villa:poll", runs=2, errors=1, last_success_ns=T - 90 * S,
                  last_error_ns=T - 30 * S, last_error="AuthError: refused (HTTP 401)"),
    ]
    assert [h.failing for h in got] == [False, False, True]
    assert table_rows(got, NOW) == [
        ("fritzbox:home:poll", True, "2026-11-29 11:59:00 UTC (60 s ago)",
         "2026-11-29 11:57:00 UTC (3 min ago): ParseError: a; ParseError: b", "3"),
        ("fritzbox:home:stats", True, "no runs recorded", "-", "-"),
        ("thinknx:villa:poll", False, "2026-11-29 11:58:30 UTC (90 s ago)",
         "2026-11-29 11:59:30 UTC (30 s ago): AuthError: refused (HTTP 401)", "1"),
    ]


def test_a_job_that_never_succeeded_and_one_that_never_failed() -> None:
    rows = [_row("a:x:poll", 7200 * 3, 1.0, None), _row("a:x:poll", 5, 1.0, None),
            _row("b:y:poll", 4000, 0.0)]
    failing, fine = job_health(rows, ["a:x:poll", "b:y:poll"])
    assert failing.failing and failing.last_success_ns is None
    assert failing.last_error == "(no error text recorded)"  # a daemon before error texts
    assert not fine.failing and fine.last_error_ns is None
    assert table_rows([failing, fine], NOW) == [
        ("a:x:poll", False, "none",
         "2026-11-29 11:59:55 UTC (5 s ago): (no error text recorded)", "2"),
        ("b:y:poll", True, "2026-11-29 10:53:20 UTC (66 min ago)", "none", "0"),
    ]


def test_the_stored_text_is_shown_redacted_on_one_line_and_short() -> None:
    register_secret("hunter2-secret")
    text = "AuthError: login\nwith hunter2-secret refused " + "x" * 400
    (h,) = job_health([_row("a:x:poll", 1, 1.0, text)], ["a:x:poll"])
    assert h.last_error is not None
    assert "hunter2" not in h.last_error and "\n" not in h.last_error
    assert h.last_error.startswith("AuthError: login with *** refused xx")
    assert len(h.last_error) == 200


@given(st.lists(st.tuples(st.integers(0, 86_399), st.integers(0, 3)), max_size=40))
def test_counts_and_newest_times_match_the_runs(runs: list[tuple[int, int]]) -> None:
    rows = [_row("j:s:poll", ago, float(errors), f"e{ago}" if errors else None)
            for ago, errors in runs]
    (h,) = job_health(rows, ["j:s:poll"])
    assert h.runs == len(runs)
    assert h.errors == sum(e for _, e in runs)
    ok = [T - ago * S for ago, e in runs if e == 0]
    bad = [T - ago * S for ago, e in runs if e > 0]
    assert h.last_success_ns == (max(ok) if ok else None)
    assert h.last_error_ns == (max(bad) if bad else None)
    assert h.failing == bool(bad and (not ok or max(bad) > max(ok)))
    if bad:
        newest = max(ago for ago, e in runs if e > 0 and T - ago * S == max(bad))
        assert h.last_error == f"e{newest}"


# --- a real daemon run, then `collector check` as users run it ------------------------------


def _config_file(tmp_path: Path, fritz: FritzboxSimulator, knx: ThinknxSimulator) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / 'store.sqlite3'}"
[spool]
path = "{tmp_path / 'spool.sqlite3'}"
flush_interval = "0.2s"
[[fritzbox]]
name = "home"
url = "{fritz.url}"
username = "{fritz.username}"
password = "{fritz.password}"
interval = "1s"
timeout = "2s"
stats_interval = "1h"
voip = false

""" + knx.config_snippet("villa").replace('interval = "60s"', 'interval = "1s"'))
    return path


def _run_daemon(config: Config, knx: ThinknxSimulator) -> list[JobOutcome]:
    """The daemon until the Thinknx poll succeeded twice, then failed three times (HTTP
    500); the Thinknx poll runs it saw, in order."""
    app = App(config)
    key = "thinknx:villa:poll"

    async def go() -> list[JobOutcome]:
        stop = asyncio.Event()
        daemon = asyncio.create_task(run(app, stop))
        seen: list[JobOutcome] = []
        deadline = time.monotonic() + 60
        while len([o for o in seen if not o.ok]) < 3:
            assert time.monotonic() < deadline, seen
            outcome = app.outcomes.get(key)
            if outcome is not None and (not seen or outcome is not seen[-1]):
                seen.append(outcome)
                if len([o for o in seen if o.ok]) == 2:
                    knx.faults.fail_next(10**6, 500)
            await asyncio.sleep(0.01)
        stop.set()
        await daemon
        return seen

    return asyncio.run(go())


def _cells(stdout: str, first: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[\u2502\u2503|]", line)]
        if first in cells:
            return cells[cells.index(first):-1]
    raise AssertionError(f"no row {first!r} in:\n{stdout}")


def test_check_after_a_daemon_run_with_a_failing_source(tmp_path: Path) -> None:
    with FritzboxSimulator(devices=2) as fritz, ThinknxSimulator(count=2) as knx:
        path = _config_file(tmp_path, fritz, knx)
        config = load_config(path)
        before = datetime.now(UTC)
        seen = _run_daemon(config, knx)
        env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
        result = subprocess.run(
            [sys.executable, "-m", "collector", "check", "--config", str(path)],
            capture_output=True, text=True, timeout=120, check=False,
            env=env | {"COLUMNS": "400"}, cwd=tmp_path)  # wide enough for whole rows
    # the failed runs the daemon counted, after the two successful ones
    assert [o.ok for o in seen[:2]] == [True, True]
    failed = [o for o in seen if not o.ok]
    assert all(o.errors == [failed[0].errors[0]] for o in failed)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert knx.password not in out + result.stderr and fritz.password not in out
    _, ok, success, error, count = _cells(out, "thinknx:villa:poll")
    assert ok == "NO"
    assert error.endswith("TransientError: server status: something went wrong on the "
                          "server (HTTP 500)")
    assert int(count) >= len(failed)  # the run under way at the stop may have failed too
    success_at = datetime.strptime(success[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    error_at = datetime.strptime(error[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= success_at < error_at <= datetime.now(UTC)
    assert _cells(out, "fritzbox:home:poll")[1:4:2] == ["yes", "none"]
    assert _cells(out, "fritzbox:home:stats")[1] == "yes"

    # the same from the store, in-process: every failed run counted, nothing else
    (health,) = read_job_health(config, ["thinknx:villa:poll"], datetime.now(UTC))
    assert health.errors == int(count) and health.failing
    assert health.runs >= len(seen)


def test_job_names_are_every_configured_job_and_the_heal_jobs(tmp_path: Path) -> None:
    with FritzboxSimulator(devices=2) as fritz, ThinknxSimulator(count=2) as knx:
        config = load_config(_config_file(tmp_path, fritz, knx))
    app = App(config)
    try:
        assert job_names(app) == ["fritzbox:home:poll", "fritzbox:home:stats",
                                  "thinknx:villa:poll"]
    finally:
        asyncio.run(app.aclose())


# --- a real InfluxDB 1.x ---------------------------------------------------------------------


def test_the_job_health_read_from_influxdb(influxd: Influxd, influx_db: str) -> None:
    now = datetime.now(UTC).replace(microsecond=123000)

    def run_points(job: str, ago_s: float, errors: float, text: str | None) -> list[Reading]:
        at = now - timedelta(seconds=ago_s)
        return [Reading("collector", value, at, "collector", job.split(":")[1], job, job,
                        make_tags(metric=metric), text if metric == "errors" else None)
                for metric, value in (("duration_s", 0.25), ("points", 3.0),
                                      ("errors", errors))]

    readings = [
        *run_points("overkiz:tahoma:states", 25 * 3600, 4.0, "too old to count"),
        *run_points("overkiz:tahoma:states", 600, 0.0, None),
        *run_points("overkiz:tahoma:states", 300, 2.0, 'OverkizRateLimited: "429", wait'),
        *run_points("overkiz:tahoma:states", 240, 1.0, "OverkizUnavailable: HTTP 503"),
        *run_points("overkiz:tahoma:heal", 120, 0.0, None),
    ]
    assert influxd.write(influx_db, "\n".join(encode_many(readings))).status_code == 204
    config = Config(store=StoreConfig(kind="influxdb"),
                    influxdb=InfluxConfig(url=influxd.url, api="v1", database=influx_db))
    states, heal, events = read_job_health(
        config, ["overkiz:tahoma:states", "overkiz:tahoma:heal", "overkiz:tahoma:events"], now)
    ns = int(now.timestamp()) * S + 123_000_000
    assert states == JobHealth("overkiz:tahoma:states", runs=3, errors=3,
                               last_success_ns=ns - 600 * S, last_error_ns=ns - 240 * S,
                               last_error="OverkizUnavailable: HTTP 503")
    assert heal == JobHealth("overkiz:tahoma:heal", runs=1, last_success_ns=ns - 120 * S)
    assert events == JobHealth("overkiz:tahoma:events")
    assert states.failing and not heal.failing and not events.recorded

    # a database the daemon never wrote to: no runs recorded, no error
    influxd.create_db(f"{influx_db}_empty")
    empty = Config(store=StoreConfig(kind="influxdb"), influxdb=InfluxConfig(
        url=influxd.url, api="v1", database=f"{influx_db}_empty"))
    assert read_job_health(empty, ["overkiz:tahoma:states"], now) == [
        JobHealth("overkiz:tahoma:states")]


# --- InfluxDB 2.x: the Flux answer as the server writes it ----------------------------------

_HEAD = ",,0,2026-11-28T12:00:00Z,2026-11-29T12:00:00Z,"
_TAGS = "collector,fritzbox:home:poll,fritzbox:home:poll"
FLUX_ANSWER = "\n".join([
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,"
    "string,string,string,string,string,string,double,string",
    "#group,false,false,true,true,false,true,true,true,true,true,true,false,false",
    "#default,_result,,,,,,,,,,,,",
    ",result,table,_start,_stop,_time,_measurement,device,device_id,metric,site,source,value,"
    "label",
    _HEAD + f"2026-11-29T11:50:00.25Z,{_TAGS},errors,home,collector,0,",
    _HEAD + f'2026-11-29T11:55:00.5Z,{_TAGS},errors,home,collector,2,"ParseError: a, ""b"""',
    _HEAD + f"2026-11-29T11:55:00.5Z,{_TAGS},points,home,collector,0,",
    "", "",
])


def test_the_job_health_read_from_influxdb_2() -> None:
    with answering_flux(FLUX_ANSWER) as (url, queries):
        config = Config(store=StoreConfig(kind="influxdb"), influxdb=InfluxConfig(
            url=url, api="v2", org="home", bucket="energy", token=SecretStr("t0ken"),
            timeout=5.0))
        (poll,) = read_job_health(config, ["fritzbox:home:poll"], NOW)
    (flux,) = queries
    start = int((NOW - timedelta(hours=24)).timestamp())
    assert f'|> range(start: {start}, stop: now())' in flux
    assert 'r._measurement == "collector"' in flux
    assert 'r.metric == "errors"' in flux  # only what the table needs is read
    assert poll == JobHealth("fritzbox:home:poll", runs=2, errors=2,
                             last_success_ns=T - 600 * S + 250_000_000,
                             last_error_ns=T - 300 * S + 500_000_000,
                             last_error='ParseError: a, "b"')
