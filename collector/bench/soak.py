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
* ``soak_readings_lost`` and ``soak_readings_wrong``: readings the simulators served after
  the warm-up and before the end of counting, missing from the store, or stored with
  another value (both must be 0): the FRITZ!Box device lists, the Thinknx status answers,
  the Overkiz event fetches and state reads; also per source
  (``soak_readings_lost_fritzbox`` ...). The expected readings come from the simulators'
  own models, never from the collector's parsers (bench_soak_lost.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from collector.bench.soak_lost import (
    Count,
    KnxServed,
    OverkizServed,
    count,
    fritzbox_expected,
    overkiz_expected,
    stored_points,
    thinknx_expected,
)
from collector.simulators._http import Request, Response
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.simulators.thinknx_project import KnxObject

log = logging.getLogger(__name__)

FRITZ_DEVICES = 60
KNX_OBJECTS = 25
POLL_S = 2
#: After counting ends, the daemon runs this long more so that the last polls are delivered.
SETTLE_S = 6.0
SITE = "soak-home"
KNX_SITE = "soak-villa"
OVERKIZ_SITE = "soak-tahoma"
SOURCES = ("fritzbox", "thinknx", "overkiz")


@dataclass(frozen=True, slots=True)
class SoakResult:
    rss_mb: float
    rss_growth_mb_per_h: float
    cpu_ms_per_poll_cycle: float
    poll_cycles: int
    #: (source, its count) for each of SOURCES.
    by_source: tuple[tuple[str, Count], ...]

    @property
    def readings_counted(self) -> int:
        return sum(c.counted for _, c in self.by_source)

    @property
    def readings_lost(self) -> int:
        return sum(c.lost for _, c in self.by_source)

    @property
    def readings_wrong(self) -> int:
        return sum(c.wrong for _, c in self.by_source)

    def figures(self) -> dict[str, float]:
        figures = {
            "soak_rss_mb": self.rss_mb,
            "soak_rss_growth_mb_per_h": self.rss_growth_mb_per_h,
            "soak_cpu_ms_per_poll_cycle": self.cpu_ms_per_poll_cycle,
            "soak_poll_cycles": float(self.poll_cycles),
            "soak_readings_counted": float(self.readings_counted),
            "soak_readings_lost": float(self.readings_lost),
            "soak_readings_wrong": float(self.readings_wrong),
        }
        for source, c in self.by_source:
            figures[f"soak_readings_counted_{source}"] = float(c.counted)
            figures[f"soak_readings_lost_{source}"] = float(c.lost)
            figures[f"soak_readings_wrong_{source}"] = float(c.wrong)
        return figures


class _CountingBox(FritzboxSimulator):
    """The FRITZ!Box simulator, keeping the time of every device list it served."""

    def __init__(self) -> None:
        super().__init__(devices=FRITZ_DEVICES)
        self.served_lists: list[float] = []
        self._served_lock = threading.Lock()

    def devicelist_xml(self, now: float) -> str:
        with self._served_lock:
            self.served_lists.append(now)
        return super().devicelist_xml(now)

    def served(self) -> list[float]:
        with self._served_lock:
            return list(self.served_lists)


class _CountingKnx(ThinknxSimulator):
    """The Thinknx simulator, keeping every status value its project answered, with the
    time."""

    def __init__(self) -> None:
        super().__init__(count=KNX_OBJECTS)
        self.values: list[KnxServed] = []
        self._values_lock = threading.Lock()
        answer = self.project.status

        def recorded(obj: KnxObject, controller: str, now: float) -> float:
            value = answer(obj, controller, now)
            with self._values_lock:
                self.values.append(KnxServed(now, obj, controller, value))
            return value

        self.project.status = recorded  # type: ignore[method-assign]

    def answered(self) -> list[KnxServed]:
        with self._values_lock:
            return list(self.values)


class _CountingOverkiz(OverkizSimulator):
    """The Overkiz simulator, keeping every event fetch and state read it served."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[OverkizServed] = []
        self._answers_lock = threading.Lock()

    def _api(self, request: Request, path: str, local: bool) -> Response:
        response = super()._api(request, path, local)
        seg = path.split("/")[1:]
        kind = None
        if request.method == "POST" and len(seg) == 3 and seg[0] == "events":
            kind = "events" if seg[2] == "fetch" else None
        elif request.method == "GET" and len(seg) == 4 and seg[::3] == ["setup", "states"]:
            kind = "states"
        if kind is not None and response.status == 200:
            url = unquote(seg[2]) if kind == "states" else ""
            with self._answers_lock:
                self.answers.append(OverkizServed(time.time(), kind, url, response.body))
        return response

    def answered(self) -> list[OverkizServed]:
        with self._answers_lock:
            return list(self.answers)


def _config(tmp: Path, box: FritzboxSimulator, knx: ThinknxSimulator,
            overkiz: OverkizSimulator) -> str:
    knx_toml = knx.config_snippet(name=KNX_SITE).replace(
        'interval = "60s"', f'interval = "{POLL_S}s"', 1)
    return (
        f'[store]\nkind = "sqlite"\npath = "{tmp}/store.sqlite3"\n'
        f'[spool]\npath = "{tmp}/spool.sqlite3"\nflush_interval = "1s"\n'
        f'[log]\nlevel = "WARNING"\n'
        f'[[fritzbox]]\nname = "{SITE}"\nurl = "{box.url}"\ntr064_url = "{box.tr064_url}"\n'
        f'username = "{box.username}"\npassword = "{box.password}"\n'
        f'interval = "{POLL_S}s"\nstats_interval = "1d"\ntimezone = "Europe/Berlin"\n'
        f'[[overkiz]]\nname = "{OVERKIZ_SITE}"\nurl = "{overkiz.url}"\n'
        f'username = "{overkiz.username}"\npassword = "{overkiz.password}"\n'
        f'interval = "5s"\nevents_interval = "1s"\ntimezone = "Europe/Paris"\n'
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


def lost_by_source(tmp: Path, box: _CountingBox, knx: _CountingKnx, overkiz: _CountingOverkiz,
                   start: float, end: float) -> tuple[tuple[str, Count], ...]:
    """(source, count) for each source of the soak whose store is in ``tmp``."""
    store = tmp / "store.sqlite3"
    expected = {
        "fritzbox": fritzbox_expected(box.house, box.served(), start, end),
        "thinknx": thinknx_expected(knx.answered(), start, end),
        "overkiz": overkiz_expected(overkiz.answered(), overkiz.house.by_url, start, end),
    }
    return tuple((source, count(expected[source], stored_points(store, source)))
                 for source in SOURCES)


def run_soak(seconds: float = 180.0) -> SoakResult:
    warm_up = min(30.0, seconds / 3)
    with (_CountingBox() as box, _CountingKnx() as knx, _CountingOverkiz() as overkiz,
          tempfile.TemporaryDirectory() as tmp):
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
        cycles = len(box.served())
        by_source = lost_by_source(Path(tmp), box, knx, overkiz, count_from, count_until)
    rss = sorted(v for _, v in samples)
    return SoakResult(
        rss_mb=rss[len(rss) // 2] if rss else 0.0,
        rss_growth_mb_per_h=slope_per_hour(samples),
        cpu_ms_per_poll_cycle=cpu_s * 1000 / cycles if cycles else 0.0,
        poll_cycles=cycles,
        by_source=by_source,
    )


def main(seconds: float = 180.0) -> dict[str, float]:
    result = run_soak(seconds)
    print(f"soak: collector run for {seconds:.0f} s against {FRITZ_DEVICES} FRITZ! devices, "
          f"{KNX_OBJECTS} KNX objects and the Overkiz house; {result.poll_cycles} FRITZ!Box "
          f"polls, {result.readings_counted} readings counted")
    for source, c in result.by_source:
        print(f"soak: {source}: {c.counted} readings served and counted, {c.lost} lost, "
              f"{c.wrong} wrong")
        for want, found in c.examples:
            tags = ",".join(f"{k}={v}" for k, v in sorted(want.tags))
            print(f"soak:   {want.measurement} {want.device_id} {tags} {list(want.values)} "
                  f"at {want.lo}..{want.hi} ns: stored {list(found) or 'nothing'}")
    figures = result.figures()
    for key, value in figures.items():
        print(f"{key}: {value:.2f}")
    return figures
