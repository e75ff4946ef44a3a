"""The soak: ``python -m collector.bench --soak [--soak-seconds N]``.

``collector run`` as a child process against the three simulators at once (a FRITZ!Box with
60 devices, a Thinknx server with 25 KNX objects, an Overkiz account with its house) at
accelerated intervals, storing into the embedded SQLite store, for ``seconds`` (default
180). Printed figures:

* ``soak_rss_mb``: median resident memory of the child, sampled once a second after a
  warm-up (the first third of the run, at most 30 s); goal <= 60.
* ``soak_rss_growth_mb_per_h``: slope of the least-squares line through those samples.
* ``soak_cpu_ms_per_poll_cycle``: the child's CPU time (user + system, /proc/<pid>/stat)
  over the FRITZ!Box device-list answers the simulator served.
* ``soak_readings_lost``: readings the simulator served in its device-list answers after the
  warm-up and before the end of counting, missing from the store (must be 0). The daemon
  stamps a poll before it asks, so the readings of the answer served at ``s`` carry a time
  after the answer before it and not after ``s``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.sources.fritzbox.parse import parse_devicelist

log = logging.getLogger(__name__)

FRITZ_DEVICES = 60
KNX_OBJECTS = 25
POLL_S = 2
#: After counting ends, the daemon runs this long more so that the last polls are delivered.
SETTLE_S = 6.0
SITE = "soak-home"

#: A point's identity without its time: measurement, device_id and the other tags.
Key = tuple[str, str, frozenset[tuple[str, str]]]
_BASE_TAGS = frozenset({"source", "site", "device_id", "device", "room"})


@dataclass(frozen=True, slots=True)
class SoakResult:
    rss_mb: float
    rss_growth_mb_per_h: float
    cpu_ms_per_poll_cycle: float
    poll_cycles: int
    readings_counted: int
    readings_lost: int

    def figures(self) -> dict[str, float]:
        return {
            "soak_rss_mb": self.rss_mb,
            "soak_rss_growth_mb_per_h": self.rss_growth_mb_per_h,
            "soak_cpu_ms_per_poll_cycle": self.cpu_ms_per_poll_cycle,
            "soak_poll_cycles": float(self.poll_cycles),
            "soak_readings_counted": float(self.readings_counted),
            "soak_readings_lost": float(self.readings_lost),
        }


class _CountingBox(FritzboxSimulator):
    """The FRITZ!Box simulator, keeping every device-list answer with the time it served it."""

    def __init__(self) -> None:
        super().__init__(devices=FRITZ_DEVICES)
        self.served_lists: list[tuple[float, bytes]] = []
        self._served_lock = threading.Lock()

    def devicelist_xml(self, now: float) -> str:
        xml = super().devicelist_xml(now)
        with self._served_lock:
            self.served_lists.append((now, xml.encode()))
        return xml

    def served(self) -> list[tuple[float, bytes]]:
        with self._served_lock:
            return list(self.served_lists)


def _config(tmp: Path, box: FritzboxSimulator, knx: ThinknxSimulator,
            overkiz: OverkizSimulator) -> str:
    knx_toml = knx.config_snippet(name="soak-villa").replace(
        'interval = "60s"', f'interval = "{POLL_S}s"', 1)
    return (
        f'[store]\nkind = "sqlite"\npath = "{tmp}/store.sqlite3"\n'
        f'[spool]\npath = "{tmp}/spool.sqlite3"\nflush_interval = "1s"\n'
        f'[log]\nlevel = "WARNING"\n'
        f'[[fritzbox]]\nname = "{SITE}"\nurl = "{box.url}"\ntr064_url = "{box.tr064_url}"\n'
        f'username = "{box.username}"\npassword = "{box.password}"\n'
        f'interval = "{POLL_S}s"\nstats_interval = "1d"\ntimezone = "Europe/Berlin"\n'
        f'[[overkiz]]\nname = "soak-tahoma"\nurl = "{overkiz.url}"\n'
        f'username = "{overkiz.username}"\npassword = "{overkiz.password}"\n'
        f'interval = "15s"\nevents_interval = "1s"\ntimezone = "Europe/Paris"\n'
        f"{knx_toml}\n"
    )


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024


def _cpu_s(pid: int) -> float:
    # fields after the command name (which may hold spaces): utime and stime are 14 and 15
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat.rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per hour (0 for fewer than 2)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 3600


def _key(measurement: str, tags: dict[str, str]) -> Key:
    rest = frozenset((k, v) for k, v in tags.items() if k not in _BASE_TAGS)
    return measurement, tags.get("device_id", ""), rest


def readings_lost(served: list[tuple[float, bytes]], store: Path,
                  start: float, end: float) -> tuple[int, int]:
    """(readings counted, readings lost) of the answers served in ``[start, end)``.

    A reading stamped with the poll time is looked for among the stored points with a time
    after the answer served before it and not after its own answer. A reading with a time of
    its own (a button's last press) is one point whichever answers repeat it: looked for at
    that time.
    """
    served = sorted(served)
    windows: list[tuple[int, int, Counter[Key]]] = []
    events: set[tuple[Key, int]] = set()
    for i, (s, xml) in enumerate(served):
        if not start <= s < end:
            continue
        polled = datetime.fromtimestamp(s, UTC)
        expected: Counter[Key] = Counter()
        for r in parse_devicelist(xml, site=SITE, time=polled).readings:
            key = _key(r.measurement, dict((("device_id", r.device_id), *r.tags)))
            if r.time == polled:
                expected[key] += 1
            else:
                events.add((key, int(r.time.timestamp() * 1_000_000) * 1000))
        before = served[i - 1][0] if i > 0 else s - 60.0
        windows.append((int(before * 1e9), int(s * 1e9), expected))
    if not windows:
        return 0, 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT measurement, time_ns, tags FROM points "
                          "WHERE json_extract(tags, '$.source') = 'fritzbox'").fetchall()
    finally:
        db.close()
    stored = sorted(((int(t), _key(m, json.loads(tags))) for m, t, tags in rows),
                    key=lambda point: point[0])
    times = [t for t, _ in stored]
    lost = len(events - {(k, t) for t, k in stored})
    counted = len(events)
    for lo, hi, expected in windows:
        inside = stored[bisect_right(times, lo):bisect_right(times, hi)]
        found = Counter(k for _, k in inside if k in expected)
        lost += sum((expected - found).values())
        counted += sum(expected.values())
    return counted, lost


def run_soak(seconds: float = 180.0) -> SoakResult:
    warm_up = min(30.0, seconds / 3)
    with (_CountingBox() as box, ThinknxSimulator(count=KNX_OBJECTS) as knx,
          OverkizSimulator() as overkiz, tempfile.TemporaryDirectory() as tmp):
        cfg = Path(tmp) / "collector.toml"
        cfg.write_text(_config(Path(tmp), box, knx, overkiz))
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(cfg)])
        samples: list[tuple[float, float]] = []
        try:
            started = time.monotonic()
            count_from = time.time() + warm_up
            while (elapsed := time.monotonic() - started) < seconds:
                time.sleep(1.0)
                if proc.poll() is not None:
                    raise RuntimeError(f"collector run ended early (exit {proc.returncode})")
                if elapsed >= warm_up:
                    samples.append((elapsed, _rss_mb(proc.pid)))
            count_until = time.time()
            time.sleep(SETTLE_S)
            cpu_s = _cpu_s(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        served = box.served()
        counted, lost = readings_lost(served, Path(tmp) / "store.sqlite3",
                                      count_from, count_until)
    rss = sorted(v for _, v in samples)
    cycles = len(served)
    return SoakResult(
        rss_mb=rss[len(rss) // 2] if rss else 0.0,
        rss_growth_mb_per_h=slope_per_hour(samples),
        cpu_ms_per_poll_cycle=cpu_s * 1000 / cycles if cycles else 0.0,
        poll_cycles=cycles,
        readings_counted=counted,
        readings_lost=lost,
    )


def main(seconds: float = 180.0) -> dict[str, float]:
    result = run_soak(seconds)
    print(f"soak: collector run for {seconds:.0f} s against {FRITZ_DEVICES} FRITZ! devices, "
          f"{KNX_OBJECTS} KNX objects and the Overkiz house; {result.poll_cycles} FRITZ!Box "
          f"polls, {result.readings_counted} readings counted")
    figures = result.figures()
    for key, value in figures.items():
        print(f"{key}: {value:.2f}")
    return figures
