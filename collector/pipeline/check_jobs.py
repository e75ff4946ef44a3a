"""The health of every job for ``collector check``, from the daemon's own self-metrics.

After every run of a job the daemon stores its ``collector`` points (``device`` =
``<source>:<name>:<job>``, ``metric`` = ``errors`` and others; app.py). The ``errors`` point
of a failed run carries the error text as its ``label``, redacted and on one line. From the
points of the last ``WINDOW_S`` this module tells per job: the newest run without errors
(last success), the newest run with errors (its time and text) and how many errors all
runs counted. A job without any run in that window shows "no runs recorded": the daemon
has not run it (lately), or its self-metrics have not reached the store.

``job_health`` is pure (rows in, one record per job out); ``read_job_health`` reads the rows
from the configured store (embedded, InfluxDB 1.x or 2.x) through export_read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from collector.config import Config
from collector.pipeline.job_errors import error_label
from collector.stores.read import Row, Selection, read

if TYPE_CHECKING:
    from collector.pipeline.app import App

#: How far back ``collector check`` looks: the error count is over this window.
WINDOW_S = 24 * 3600
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class JobHealth:
    """What the stored self-metrics say about one job over the window."""

    job: str  # "<source>:<name>:<job>"
    runs: int = 0
    errors: int = 0  # errors counted by all runs in the window
    last_success_ns: int | None = None
    last_error_ns: int | None = None
    last_error: str | None = None  # the text of the newest failed run

    @property
    def recorded(self) -> bool:
        return self.runs > 0

    @property
    def failing(self) -> bool:
        """Its newest run failed."""
        if self.last_error_ns is None:
            return False
        return self.last_success_ns is None or self.last_error_ns > self.last_success_ns


def job_names(app: App) -> list[str]:
    """Every job the daemon would run for ``app``'s sources, the heal jobs included."""
    from collector.pipeline.heal import Healer

    names = [f"{s.label}:{j.name}" for s in app.sources for j in s.jobs()]
    return names + [f"{s.label}:{j.name}" for s, j in Healer(app).jobs()]


def job_health(rows: Iterable[Row], jobs: Sequence[str]) -> list[JobHealth]:
    """One ``JobHealth`` per name in ``jobs`` (in that order) from ``collector`` rows.

    Only the ``errors`` points count: one per run, value = the run's error count, label =
    its error text. Rows of other jobs (no longer configured) and other metrics are skipped.
    """
    wanted = set(jobs)
    runs = dict.fromkeys(jobs, 0)
    errors = dict.fromkeys(jobs, 0.0)
    success: dict[str, int] = {}
    failure: dict[str, tuple[int, str | None]] = {}
    for time_ns, tags, value, label in rows:
        job = tags.get("device")
        if tags.get("metric") != "errors" or job not in wanted:
            continue
        runs[job] += 1
        if value > 0:
            errors[job] += value
            if job not in failure or time_ns >= failure[job][0]:
                failure[job] = (time_ns, label)
        elif time_ns >= success.get(job, time_ns):
            success[job] = time_ns
    out = []
    for job in jobs:
        failed = failure.get(job)
        out.append(JobHealth(
            job, runs[job], round(errors[job]), success.get(job),
            failed[0] if failed else None,
            (error_label([failed[1]]) if failed[1] else "(no error text recorded)")
            if failed else None,
        ))
    return out


def _when(time_ns: int, now: datetime) -> str:
    at = datetime.fromtimestamp(time_ns / _NS, UTC)
    age_s = max(0, int((now - at).total_seconds()))
    if age_s < 120:
        ago = f"{age_s} s ago"
    elif age_s < 7200:
        ago = f"{age_s // 60} min ago"
    else:
        ago = f"{age_s // 3600} h ago"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC ({ago})"


def table_rows(health: Sequence[JobHealth], now: datetime) -> list[tuple[str, bool, str, str,
                                                                         str]]:
    """Per job: (job, ok, last success, last error, errors in the window) as printed.

    ``ok`` is False for a job whose newest run failed; a job without runs is not a failure
    (the daemon may not have run yet) but says so.
    """
    out = []
    for h in health:
        if not h.recorded:
            out.append((h.job, True, "no runs recorded", "-", "-"))
            continue
        success = _when(h.last_success_ns, now) if h.last_success_ns is not None else "none"
        if h.last_error_ns is None:
            error = "none"
        else:
            error = f"{_when(h.last_error_ns, now)}: {h.last_error}"
        out.append((h.job, not h.failing, success, error, str(h.errors)))
    return out


def read_job_health(config: Config, jobs: Sequence[str], now: datetime) -> list[JobHealth]:
    """``job_health`` of the ``collector`` points of the last ``WINDOW_S`` in the store."""
    start = int(now.timestamp() - WINDOW_S) * _NS
    if (config.store.kind == "sqlite" or config.influxdb is None) \
            and not config.store.path.is_file():
        return job_health((), jobs)  # nothing stored yet
    # one errors point per run is all job_health needs: the store filters the rest out
    errors_only = Selection(start=start, tags=(("metric", "errors"),))
    return job_health(read(config, "collector", errors_only), jobs)
