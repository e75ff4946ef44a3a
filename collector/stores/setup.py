"""``collector store setup``: downsampling in the configured store, said step by step.

InfluxDB 1.x: retention policies and continuous queries (collector/stores/setup_v1.py);
2.x: a rollup bucket and tasks (collector/stores/setup_v2.py); 3.x and the embedded store
have nothing of the kind, which the report says: the dashboards and exports read raw data
there.
"""

from __future__ import annotations

from collector.config import Config
from collector.stores.setup_v1 import SetupReport, fill_v1, has_rollups, setup_v1


def setup_store(config: Config) -> SetupReport:
    """Apply the rollups to the configured store; a second run finds everything in place."""
    ic = config.influxdb
    if config.store.kind == "sqlite" or ic is None:
        report = SetupReport(f"embedded store {config.store.path}")
        report.add("downsampling", "not available",
                   "the embedded store keeps every point and has no rollups; the exports "
                   "and analysis read raw data (Grafana needs InfluxDB)")
        return report
    if ic.api == "v1":
        return setup_v1(ic)
    from collector.stores.setup_v2 import setup_v2

    return setup_v2(ic)


def fill_rollups(config: Config, start_ns: int, end_ns: int) -> str | None:
    """Compute the rollups over a past range (a continuous query only covers new data);
    a note of what was done, or None where the store has no rollups to fill."""
    ic = config.influxdb
    if config.store.kind == "sqlite" or ic is None:
        return None
    if ic.api == "v1":
        if not has_rollups(ic):  # never set up: nothing to fill
            return None
        return f"{fill_v1(ic, start_ns, end_ns)} rollup points computed"
    from collector.stores.setup_v2 import fill_v2

    return f"{fill_v2(ic, start_ns, end_ns)} rollups computed"
