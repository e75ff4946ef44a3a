"""Benchmark of ``collector export`` and ``collector.outputs.analysis.load``:
``python -m collector.bench.export [--rows N]``.

One million ``power_w`` readings (100 devices, every 10 s) go into the embedded store and into
a throwaway influxd; then ``collector export`` runs as users run it (a subprocess, CSV to a
file) over a tenth of them and over all of them, from each store. Printed as ``name: value``:

* ``export_rows_per_s_<store>``: rows per second of the full export (process start included);
  ``export_rows_per_s``: the slower store's.
* ``export_peak_rss_mb_<store>_<rows>``: the export process's peak resident memory at both
  sizes; ``export_peak_rss_mb``: the largest. Streaming means the two sizes are alike.
* ``analysis_load_vs_dataframeclient``: seconds of the classic ``influxdb`` package's
  ``DataFrameClient.query`` divided by seconds of our ``load`` for the same rows from the
  same influxd (above 1: ``load`` is faster); ``analysis_load_rows_per_s`` and
  ``dataframeclient_rows_per_s`` beside it. The ``influxdb`` package is a benchmark-only
  dependency (``pip install 'collector[bench]'``); without it the ratio is skipped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

DEVICES = 100
STEP_S = 10
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 5000


def _lines(rows: int) -> list[str]:
    from collector.lineprotocol import Encoder
    from collector.model import Reading, make_tags

    enc = Encoder()
    out = []
    for i in range(rows):
        instant, dev = divmod(i, DEVICES)
        out.append(enc.encode(Reading(
            "power_w", float((i * 7919) % 3000) / 10.0, T0 + timedelta(seconds=STEP_S * instant),
            "fritzbox", "bench", f"0876{dev:08d}", f"Plug {dev}",
            make_tags(room=f"Room {dev % 12}"))))
    return out


def _fill_sqlite(path: Path, lines: list[str]) -> None:
    from collector.stores.sqlite import SqliteStore

    store = SqliteStore(path)
    try:
        for i in range(0, len(lines), BATCH):
            store.write_sync(lines[i:i + BATCH])
    finally:
        store.close()


def _fill_influx(url: str, db: str, lines: list[str]) -> None:
    with httpx.Client(timeout=120) as client:
        client.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
        for i in range(0, len(lines), BATCH):
            resp = client.post(f"{url}/write", params={"db": db, "precision": "ns"},
                               content="\n".join(lines[i:i + BATCH]).encode())
            resp.raise_for_status()


def _export(config: Path, out: Path, end: datetime) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, rows) of one ``collector export`` process.

    The peak is the process's own ``VmHWM``, read while it runs: the rusage of a child
    started from this (large) process would count the parent's memory at the fork.
    """
    cmd = [sys.executable, "-m", "collector", "export", "--config", str(config),
           "--measurement", "power_w", "--to", end.isoformat(), "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"export failed: {err}")
    with out.open("rb") as fh:
        rows = sum(1 for _ in fh) - 1
    return elapsed, peak_kib / 1024, rows


def _end(rows: int) -> datetime:
    return T0 + timedelta(seconds=STEP_S * (rows // DEVICES))


def _load_vs_dataframeclient(url: str, db: str, config: Path, rows: int) -> dict[str, float]:
    try:
        from influxdb import DataFrameClient  # type: ignore[import-untyped]
    except ImportError:
        print("analysis_load_vs_dataframeclient: skipped, the influxdb package is not installed "
              "(pip install 'collector[bench]')")
        return {}
    from collector.outputs import analysis

    end = _end(rows)
    started = time.perf_counter()
    ours = analysis.load("power_w", None, end, config=config)
    ours_s = time.perf_counter() - started
    host, port = url.rsplit("//", 1)[1].split(":")
    client = DataFrameClient(host=host, port=int(port), database=db, timeout=600)
    started = time.perf_counter()
    query = f'SELECT * FROM "power_w" WHERE time < {int(end.timestamp())}s'  # noqa: S608
    theirs = client.query(query)
    theirs_s = time.perf_counter() - started
    client.close()
    if len(ours) != rows or len(theirs["power_w"]) != rows:
        raise RuntimeError(f"row counts differ: load {len(ours)}, DataFrameClient "
                           f"{len(theirs['power_w'])}, wanted {rows}")
    return {"analysis_load_vs_dataframeclient": theirs_s / ours_s,
            "analysis_load_rows_per_s": rows / ours_s,
            "dataframeclient_rows_per_s": rows / theirs_s}


def run(rows: int = 1_000_000, compare_rows: int = 200_000) -> dict[str, float]:
    from collector.bench.influxd import influxd_binary, running_influxd

    results: dict[str, float] = {}
    small = rows // 10
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lines = _lines(rows)
        _fill_sqlite(tmp / "store.sqlite3", lines)
        sqlite_cfg = tmp / "sqlite.toml"
        sqlite_cfg.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp}/store.sqlite3"\n'
                              '[log]\nlevel = "WARNING"\n')
        configs: list[tuple[str, Path]] = [("sqlite", sqlite_cfg)]
        with _maybe_influxd(tmp, influxd_binary(), running_influxd) as server:
            if server is not None:
                _fill_influx(server.url, "bench", lines)
                influx_cfg = tmp / "influx.toml"
                influx_cfg.write_text(f'[store]\nkind = "influxdb"\n[influxdb]\napi = "v1"\n'
                                      f'url = "{server.url}"\ndatabase = "bench"\n'
                                      'timeout = "600s"\n[log]\nlevel = "WARNING"\n')
                configs.append(("influxdb", influx_cfg))
            del lines
            for store, cfg in configs:
                for n in (small, rows):
                    seconds, rss, got = _export(cfg, tmp / f"{store}-{n}.csv", _end(n))
                    if got != n:
                        raise RuntimeError(f"{store}: exported {got} rows, wanted {n}")
                    results[f"export_peak_rss_mb_{store}_{_size(n)}"] = rss
                    print(f"export from {store}: {n:,} rows in {seconds:.1f} s "
                          f"({n / seconds:,.0f} rows/s), peak RSS {rss:.1f} MB")
                results[f"export_rows_per_s_{store}"] = rows / seconds
            if server is not None:
                results.update(_load_vs_dataframeclient(server.url, "bench", influx_cfg,
                                                        min(compare_rows, rows)))
    results["export_rows_per_s"] = min(v for k, v in results.items()
                                       if k.startswith("export_rows_per_s_"))
    results["export_peak_rss_mb"] = max(v for k, v in results.items()
                                        if k.startswith("export_peak_rss_mb_"))
    return results


def _size(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


class _maybe_influxd:  # noqa: N801 (a context manager used like a function)
    """The throwaway influxd, or None (said once) where none is installed."""

    def __init__(self, tmp: Path, binary: str | None, running: Any) -> None:
        self._cm = running(tmp / "influx", binary) if binary else None

    def __enter__(self) -> Any:
        if self._cm is None:
            print("export from influxdb: skipped, no influxd installed")
            return None
        return self._cm.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compare-rows", type=int, default=200_000,
                        help="rows of the load vs DataFrameClient comparison")
    args = parser.parse_args(argv if argv is not None else [])
    results = run(args.rows, args.compare_rows)
    for key, value in results.items():
        print(f"{key}: {value:.2f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
