"""Benchmark of an Overkiz history backfill: ``python -m collector.bench.overkiz``.

A 30-day ``collector backfill`` of the simulated house (no artificial latency) into the
embedded store, through the same App and backfill code the command uses. Printed as
``name: value`` lines:

* ``overkiz_backfill_30d_s``: wall time of the backfill, setup discovery included.
* ``overkiz_backfill_requests``: requests the simulator answered for it (login and setup
  included), and ``overkiz_backfill_requests_per_device_month`` per device with history.
* ``overkiz_backfill_history_requests``, ``..._aggregated_requests``,
  ``..._growing_requests``: of those, the raw 3-day history windows, the daily/monthly
  history reads and the growing index variations (energy per day and month).
* ``overkiz_backfill_points``: points the backfill stored.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

SINCE_DAYS = 30


def source_available() -> bool:
    try:
        return importlib.util.find_spec("collector.sources.overkiz.source") is not None
    except ModuleNotFoundError:
        return False


def bench_overkiz_backfill(days: int = SINCE_DAYS) -> dict[str, float]:
    """Backfill ``days`` of history from a fresh simulator; {} when there is no source."""
    if not source_available():
        print("overkiz backfill: skipped, this version has no Overkiz source "
              "(collector.sources.overkiz)")
        return {}
    from collector.config import load_config
    from collector.pipeline.app import App
    from collector.pipeline.backfill import run_backfill
    from collector.simulators.overkiz import OverkizSimulator

    with OverkizSimulator() as sim, tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "collector.toml"
        cfg.write_text(
            f'[store]\nkind = "sqlite"\npath = "{tmp}/store.sqlite3"\n'
            f'[spool]\npath = "{tmp}/spool.sqlite3"\n[log]\nlevel = "WARNING"\n'
            f'[[overkiz]]\nname = "bench"\nurl = "{sim.url}"\nusername = "{sim.username}"\n'
            f'password = "{sim.password}"\n'
        )
        config = load_config(cfg)
        since = datetime.now(UTC) - timedelta(days=days)

        async def go() -> int:
            app = App(config)
            try:
                outcomes = await run_backfill(app, since)
                errors = [e for o in outcomes for e in o.errors]
                if errors:
                    raise RuntimeError(f"backfill failed: {errors[:3]}")
                return sum(o.points for o in outcomes)
            finally:
                await app.aclose()

        t0 = time.perf_counter()
        points = asyncio.run(go())
        elapsed = time.perf_counter() - t0
        requests = sum(sim.endpoint_requests.values())
        kinds = {
            kind: sum(n for template, n in sim.endpoint_requests.items() if match(template))
            for kind, match in (
                ("history", lambda t: t.endswith("/history/{from}/{to}")),
                ("aggregated", lambda t: "/history/daily/" in t or "/history/monthly/" in t),
                ("growing", lambda t: t.endswith("/growingIndexes")),
            )
        }
        devices = sum(1 for d in sim.house.devices if any(s.historised for s in d.states))
        if sim.violation_count:
            print(f"overkiz backfill broke rate limits: {dict(sim.violations)}")
    months = days / 30
    return {
        f"overkiz_backfill_{days}d_s": elapsed,
        "overkiz_backfill_requests": float(requests),
        "overkiz_backfill_requests_per_device_month": requests / devices / months,
        **{f"overkiz_backfill_{kind}_requests": float(n) for kind, n in kinds.items()},
        "overkiz_backfill_points": float(points),
        "overkiz_backfill_rate_limit_violations": float(sim.violation_count),
    }


def main() -> dict[str, float]:
    results = bench_overkiz_backfill()
    if results:
        print(f"overkiz backfill of {SINCE_DAYS} days: {results['overkiz_backfill_30d_s']:.2f} s,"
              f" {results['overkiz_backfill_requests']:.0f} requests "
              f"({results['overkiz_backfill_requests_per_device_month']:.1f} per device-month), "
              f"{results['overkiz_backfill_points']:.0f} points")
        for key, value in results.items():
            print(f"{key}: {value:.2f}")
    return results


if __name__ == "__main__":
    main()
