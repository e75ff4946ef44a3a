"""The dashboards-over-a-year benchmark, on one simulated day (the full year is for
``python -m collector.bench``): it writes the house, computes its rollups and times every
Energy and Climate panel. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

from collector.bench.rollups import bench_rollups, house_lines, interpolate
from tests.influxd import influxd_binary


def test_one_day_of_the_house_is_what_the_bench_describes() -> None:
    lines = house_lines(0, 1, 1, 1, [1000.0]).split("\n")
    # 1440 minutes x (power, meter) + one daily total + 1440 x (temperature, setpoint,
    # humidity, mode)
    assert len(lines) == 1440 * 2 + 1 + 1440 * 4
    assert lines[0] == ("power_w,device=Plug\\ 0,device_id=08760000,site=home,source=fritzbox,"
                        "room=R0 value=20.00 1793404800000000000")
    assert lines[1].startswith("energy_wh,") and " value=1000.3 " in lines[1]


def test_grafana_macros_are_replaced() -> None:
    q = ('SELECT mean("value") FROM "power_w" WHERE $timeFilter AND "site" =~ /^$site$/ '
         "AND $__interval_ms < 3600000 GROUP BY time($__interval)")
    day = 86_400_000  # a year over 1,000 points: 31,536 s each, rounded to 6 h
    assert interpolate(q, 0, 365 * day, {"site": "(home)"}) == (
        'SELECT mean("value") FROM "power_w" WHERE time >= 0ms and time <= 31536000000ms AND '
        '"site" =~ /^(home)$/ AND 21600000 < 3600000 GROUP BY time(6h)')


def test_the_bench_runs_on_a_day(tmp_path: Path) -> None:
    if influxd_binary() is None:
        return  # influxd_binary skips (or fails in CI)
    figures = bench_rollups(days=1, plugs=1, thermostats=1, workdir=tmp_path, settle=False)
    assert figures["rollups_points"] == 8641
    # 24 hours x 6 series (power, meter, temperature, setpoint, humidity, mode) + the total
    assert figures["rollups_fill_points"] == 24 * 6 + 1
    assert {"month_panel_max_s", "year_panel_max_s", "year_vs_month_panel_ratio",
            "raw_mb_per_device_year", "rollup_mb_per_device_year"} <= set(figures)
