"""Dashboards over a year against a month, with the rollups: ``python -m collector.bench.rollups``
(also run by ``python -m collector.bench``).

A real influxd (collector/bench/influxd.py) gets a simulated year of a house polled every 60 s:
``--plugs`` metering plugs (power and meter reading each, plus daily totals) and
``--thermostats`` thermostats (temperature, target setpoint, humidity, mode), written as
line protocol in batches of one day; then ``collector store setup`` and the rollups of the
whole year computed as the continuous queries compute them (``SELECT ... INTO``). Every
panel of the Energy and Climate dashboards, its queries with Grafana's macros substituted
(``$timeFilter``, ``$__interval`` rounded as Grafana rounds it for 1,000 points, every
variable on "All"), runs over the last 30 days and over the last year; a panel's time is the
best of three runs of all its queries. Printed as ``name: value`` lines:

* ``month_panel_max_s``, ``year_panel_max_s``: the slowest panel over 30 days and over a
  year;
* ``year_vs_month_panel_ratio``: the year time of the slowest panel over a year divided by
  its 30-day time (target at most 2);
* ``raw_mb_per_device_year``, ``rollup_mb_per_device_year``: the disk the raw points and
  the rollups of one device-year take (TSM files after compaction, all devices' average);
* ``rollups_fill_s``: the time to compute a year of rollups.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from collector.bench.influxd import Influxd, influxd_binary

DB = "energy"
#: The end of the simulated year (Grafana's "now").
END = datetime(2026, 11, 1, tzinfo=UTC)
_NS = 1_000_000_000
#: (upper bound in ms, Grafana's interval) of Grafana's interval rounding (kbn.roundInterval)
_ROUNDING = ((15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
             (3500, 2000), (7500, 5000), (12500, 10_000), (17500, 15_000), (25000, 20_000),
             (45000, 30_000), (90000, 60_000), (210_000, 120_000), (450_000, 300_000),
             (1_050_000, 600_000), (2_100_000, 900_000), (4_500_000, 1_800_000),
             (9_000_000, 3_600_000), (17_280_000, 7_200_000), (34_560_000, 21_600_000),
             (64_800_000, 43_200_000), (604_800_000, 86_400_000),
             (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000))


def interval_ms(range_ms: int, max_points: int = 1000) -> int:
    raw = range_ms / max_points
    for bound, rounded in _ROUNDING:
        if raw < bound:
            return rounded
    return 365 * 86_400_000


def _interval_text(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def house_lines(day: int, days: int, plugs: int, thermostats: int,
                meters: list[float]) -> str:
    """Line protocol of one day (``day`` of ``days`` before END) of the whole house;
    ``meters`` carries the plugs' meter readings from day to day."""
    start_s = int((END - timedelta(days=days - day)).timestamp())
    out: list[str] = []
    add = out.append
    for p in range(plugs):
        tags = f"device=Plug\\ {p},device_id=0876{p:04d},site=home,source=fritzbox,room=R{p % 5}"
        base = 20.0 + 15.0 * p
        meter = meters[p]
        day_start = meter
        for minute in range(1440):
            t = (start_s + minute * 60) * _NS
            watts = base + ((minute * 7 + p * 13) % 17) * 3.5 + (minute // 60) * 2.0
            meter += watts / 60.0
            add(f"power_w,{tags} value={watts:.2f} {t}")
            add(f"energy_wh,{tags} value={meter:.1f} {t}")
        add(f"energy_period_wh,{tags},period=day value={meter - day_start:.1f} "
            f"{start_s * _NS}")
        meters[p] = meter
    for h in range(thermostats):
        tags = f"device=HKR\\ {h},device_id=0999{h:04d},site=home,source=fritzbox,room=R{h}"
        for minute in range(1440):
            t = (start_s + minute * 60) * _NS
            temp = 18.0 + (minute % 720) / 240.0 + h * 0.5
            setpoint = 21.0 if 360 <= minute < 1320 else 17.0
            add(f"temperature_c,{tags} value={temp:.1f} {t}")
            add(f"setpoint_c,{tags},kind=target value={setpoint} {t}")
            add(f"humidity_pct,{tags} value={45 + (minute + h * 40) % 20} {t}")
            mode = 2 if setpoint > 17 else 0
            add(f'state,{tags},name=thermostat_mode value={mode},label="'
                f'{"setpoint" if mode else "off"}" {t}')
    return "\n".join(out)


def fill_house(server: Influxd, days: int, plugs: int, thermostats: int) -> int:
    """Write the simulated house, one day per request; returns the number of points."""
    meters = [1000.0 * (p + 1) for p in range(plugs)]
    points = 0
    with httpx.Client(timeout=600) as client:
        for day in range(days):
            body = house_lines(day, days, plugs, thermostats, meters)
            points += body.count("\n") + 1
            resp = client.post(f"{server.url}/write", params={"db": DB, "precision": "ns"},
                               content=body.encode())
            resp.raise_for_status()
    return points


def _variables(server: Influxd, start_ms: int, end_ms: int) -> dict[str, str]:
    """The variables' values: "All" (every tag value the store has, as Grafana's regex),
    the rollups on."""
    out = {"room": ".*", "timezone": "Europe/Berlin", "price_kwh": "0.30",
           "rollups": "rollup_1h"}  # the variable Rollups on
    for name in ("site", "device"):
        answer = server.query(f'SHOW TAG VALUES WITH KEY = "{name}" WHERE time >= '
                              f"{start_ms}ms AND time <= {end_ms}ms", DB)
        values = sorted({row[1] for s in answer["results"][0].get("series", [])
                         for row in s["values"]})
        escaped = [re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), v)
                   for v in values]
        out[name] = "(" + "|".join(escaped) + ")"
    return out


def interpolate(query: str, start_ms: int, end_ms: int, variables: dict[str, str]) -> str:
    step = interval_ms(end_ms - start_ms)
    out = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    out = out.replace("$__interval_ms", str(step)).replace("$__interval", _interval_text(step))
    for name in sorted(variables, key=len, reverse=True):
        out = out.replace(f"${name}", variables[name])
    return out


def panel_queries(days: int, server: Influxd) -> dict[str, list[str]]:
    """Every Energy and Climate panel's queries over the last ``days`` days."""
    from collector.outputs.dashboards.boards import climate, energy

    end_ms = int(END.timestamp() * 1000)
    out: dict[str, list[str]] = {}
    for board in (energy(), climate()):
        model = board.to_json()
        for panel in model["panels"]:
            span = days
            if panel.get("timeFrom"):  # a range of its own, e.g. "1y"
                amount, unit = int(panel["timeFrom"][:-1]), panel["timeFrom"][-1]
                span = amount * {"d": 1, "y": 365}[unit]
            start_ms = end_ms - span * 86_400_000
            variables = _variables(server, start_ms, end_ms)
            out[f"{model['title']}: {panel['title']}"] = [
                interpolate(t["query"], start_ms, end_ms, variables) for t in panel["targets"]]
    return out


def time_panel(client: httpx.Client, url: str, queries: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for q in queries:
            resp = client.post(f"{url}/query", data={"q": q, "db": DB, "epoch": "ms"})
            resp.raise_for_status()
            if '"error"' in resp.text[:200]:
                raise RuntimeError(f"panel query failed: {resp.text[:300]} ({q})")
        best = min(best, time.perf_counter() - t0)
    return best


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _compacted(server: Influxd, timeout_s: float = 600.0) -> None:
    """Wait until the write-ahead log is flushed into TSM files and they stop changing."""
    data = server.workdir / "data" / DB
    wal = server.workdir / "wal" / DB
    deadline, last = time.monotonic() + timeout_s, -1
    while time.monotonic() < deadline:
        time.sleep(5)
        size = _size(data)
        if size == last and _size(wal) < 1_000_000:
            return
        last = size


def bench_rollups(days: int = 365, plugs: int = 10, thermostats: int = 4,
                  workdir: Path | None = None, settle: bool = True) -> dict[str, float]:
    """The figures; ``settle=False`` measures the disk without waiting for compaction."""
    from collector.config import Config, InfluxConfig, StoreConfig
    from collector.stores.setup import setup_store
    from collector.stores.setup_v1 import fill_v1

    binary = influxd_binary()
    if binary is None:
        print("rollups bench: skipped, no influxd (apt-get install influxdb)")
        return {}
    with tempfile.TemporaryDirectory(prefix="bench-rollups-") as tmp:
        server = Influxd(workdir or Path(tmp), binary)
        # cold shards are snapshotted and compacted within seconds, so the disk is measured
        # as it ends up, not with the write-ahead log
        server.config.write_text(server.config.read_text().replace(
            "[data]\n", '[data]\n  cache-snapshot-write-cold-duration = "2s"\n'
            '  compact-full-write-cold-duration = "5s"\n', 1))
        server.start()
        try:
            server.create_db(DB)
            config = Config(store=StoreConfig(kind="influxdb"),
                            influxdb=InfluxConfig(url=server.url, api="v1", database=DB))
            assert config.influxdb is not None
            setup_store(config)
            t0 = time.perf_counter()
            points = fill_house(server, days, plugs, thermostats)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            start_ns = int((END - timedelta(days=days)).timestamp()) * _NS
            rolled = fill_v1(config.influxdb, start_ns, int(END.timestamp()) * _NS)
            fill_s = time.perf_counter() - t0
            if settle:
                _compacted(server)
            base = server.workdir / "data" / DB
            raw_b, rollup_b = _size(base / "autogen"), _size(base / "rollup_1h")
            times = {}
            with httpx.Client(timeout=300) as client:
                for span in (30, days):
                    for name, queries in panel_queries(span, server).items():
                        times[(name, span)] = time_panel(client, server.url, queries)
        finally:
            server.stop()
    year = {name: t for (name, span), t in times.items() if span == days}
    month = {name: t for (name, span), t in times.items() if span == 30}
    slowest = max(year, key=lambda n: year[n])
    for name, seconds in year.items():
        print(f"  {name}: 30 days {month[name]:.3f} s, {days} days {seconds:.3f} s")
    device_years = (plugs + thermostats) * days / 365
    return {
        "rollups_points": float(points),
        "rollups_write_s": write_s,
        "rollups_fill_s": fill_s,
        "rollups_fill_points": float(rolled),
        "month_panel_max_s": max(month.values()),
        "year_panel_max_s": year[slowest],
        "year_vs_month_panel_ratio": year[slowest] / month[slowest],
        "raw_mb_per_device_year": raw_b / 1e6 / device_years,
        "rollup_mb_per_device_year": rollup_b / 1e6 / device_years,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m collector.bench.rollups")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--plugs", type=int, default=10)
    parser.add_argument("--thermostats", type=int, default=4)
    args = parser.parse_args(argv)
    results = bench_rollups(args.days, args.plugs, args.thermostats)
    if results:
        print(f"rollups: {results['rollups_points']:,.0f} points of {args.plugs} plugs and "
              f"{args.thermostats} thermostats over {args.days} days written in "
              f"{results['rollups_write_s']:.1f} s, rollups computed in "
              f"{results['rollups_fill_s']:.1f} s")
        for key, value in results.items():
            print(f"{key}: {value:.3f}")
    return results


if __name__ == "__main__":
    main()
