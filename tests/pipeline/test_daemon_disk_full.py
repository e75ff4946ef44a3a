"""``collector run`` as a process, polling the FRITZ!Box simulator every second into a real
influxd, while the store goes away and the spool's file system fills up: the error is logged
once, polling goes on, once there is room and the store is back polls are stored again and
the lost lines are counted, nothing that was spooled is lost, and SIGTERM ends the process.

Two ways to fill the spool: a small tmpfs mounted for the test (as root, where mount works;
skipped visibly otherwise) and, on every machine, a spool file capped with SQLite's
``max_page_count`` (tests/spool_cap.py). Run with ``-s`` to see the seconds from "disk full"
to the first log line, from "space again" to the first stored poll, and from SIGTERM to exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.lineprotocol import parse_line
from collector.pipeline.spool_chunks import unpack_text
from collector.simulators.fritzbox import FritzboxSimulator
from tests.influxd import Influxd, influxd_binary
from tests.pipeline.test_daemon_watchdog import NotifySocket

ROOT = Path(__file__).resolve().parents[2]
#: systemd's TimeoutStopSec in deploy/collector.service
TIMEOUT_STOP_S = 90
#: the capped spool's file: about 256 kB, a dozen seconds of polls while the store is away
CAP_PAGES = 64


class Daemon:
    """``collector run`` in a process of its own; its log lines as they come, timed."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, pattern: str, after: float = 0.0) -> tuple[float, str] | None:
        return next(((t, line) for t, line in list(self.lines)
                     if t >= after and re.search(pattern, line)), None)

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)


def _wait(what: str, condition: Callable[[], object], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {timeout_s:.0f} s: {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def _tmpfs(mount_point: Path) -> Iterator[Path]:
    """A 4 MB tmpfs at ``mount_point`` for the test, or a visible skip."""
    if os.geteuid() != 0:
        pytest.skip("a full file system needs root to mount a tmpfs; the capped spool runs")
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                           str(mount_point)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the capped spool runs")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` up to the last byte; the file that does it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as err:
                assert err.errno == errno.ENOSPC
    return filler


def _spooled_power(spool: Path) -> set[tuple[str, int]]:
    """The power_w points in the spool file now, as (series, time), read without writing."""
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, lines FROM pending").fetchall()
    finally:
        db.close()
    points = set()
    for chunk_id, stored in rows:
        for text in unpack_text(chunk_id, stored).split("\n"):
            if text.startswith("power_w,"):
                line = parse_line(text)
                points.add((line.series_key(), line.time_ns))
    return points


def _stored_power(server: Influxd) -> set[tuple[str, int]]:
    rows = server.rows('SELECT "value" FROM "power_w" GROUP BY *', "energy")
    out = set()
    for row in rows:
        tags = sorted((k, v) for k, v in row.items()
                      if k not in {"time", "value", "_measurement"} and v)
        out.add((",".join(f"{k}={v}" for k, v in tags), int(row["time"])))
    return out


def _count(server: Influxd, query: str) -> int:
    rows = server.rows(query, "energy")
    return int(rows[0]["count"]) if rows else 0


@pytest.fixture
def influxd_away(tmp_path: Path) -> Iterator[Influxd]:
    binary = influxd_binary()
    if binary is None:
        pytest.skip("influxd not installed (apt-get install influxdb); integration test skipped")
    (tmp_path / "influx").mkdir()
    server = Influxd(tmp_path / "influx", binary)
    yield server
    server.stop()


@pytest.mark.parametrize("filled_by", ["tmpfs", "capped"])
def test_a_full_disk_while_the_store_is_away_is_logged_once_and_collection_resumes(
        tmp_path: Path, influxd_away: Influxd, filled_by: str) -> None:
    server = influxd_away
    server.start()
    server.create_db("energy")
    with contextlib.ExitStack() as stack:
        if filled_by == "tmpfs":
            spool_dir = stack.enter_context(_tmpfs(tmp_path / "small-disk"))
        else:
            spool_dir = tmp_path / "data"
            spool_dir.mkdir()
        _scenario(tmp_path, server, spool_dir, filled_by, stack)


def _scenario(tmp_path: Path, server: Influxd, spool_dir: Path, filled_by: str,
              stack: contextlib.ExitStack) -> None:
    spool = spool_dir / "spool.sqlite3"
    sim = FritzboxSimulator()
    sim.start()
    stack.callback(sim.stop)
    notify = NotifySocket()
    stack.callback(notify.close)
    config = tmp_path / "collector.toml"
    config.write_text(f"""
[store]
kind = "influxdb"
[influxdb]
url = "{server.url}"
api = "v1"
database = "energy"
timeout = "3s"
[spool]
path = "{spool}"
flush_interval = "0.2s"
max_backoff = "1s"
[[fritzbox]]
name = "home"
url = "{sim.url}"
tr064_url = "{sim.tr064_url}"
username = "{sim.username}"
password = "${{FRITZ_PASSWORD}}"
interval = "1s"
stats_interval = "1h"
timezone = "Europe/Berlin"
""")
    env = {**os.environ, "FRITZ_PASSWORD": sim.password, "NOTIFY_SOCKET": notify.path,
           "WATCHDOG_USEC": "3000000", "PYTHONPATH": str(ROOT)}
    env.pop("WATCHDOG_PID", None)
    argv = [sys.executable, "-m", "collector", "run", "--config", str(config)]
    if filled_by == "capped":
        env["COLLECTOR_TEST_SPOOL_PAGES"] = str(CAP_PAGES)
        argv[1:3] = ["-c", "import tests.spool_cap; from collector.cli import main; main()"]
    daemon = Daemon(argv, env)
    stack.callback(daemon.stop)
    polls = lambda: sim.commands["getdevicelistinfos"]  # noqa: E731

    _wait("ready", lambda: "READY=1\nSTATUS=collecting" in notify.messages)
    _wait("polls stored", lambda: _count(server, 'SELECT count("value") FROM "power_w"') > 0)
    server.stop()  # the store goes away
    _wait("the spool grows", lambda: daemon.first(r"lines wait in the spool"))
    full_at: float | None = None
    filler: Path | None = None
    if filled_by == "tmpfs":
        filler = _fill(spool_dir)
        full_at = time.monotonic()
    _wait("the spool error", lambda: daemon.first(r"ERROR collector\.pipeline\.spool: spool .* "
                                                  r"cannot be "
                                                  r"written"))
    said = daemon.first(r"ERROR collector\.pipeline\.spool: spool .* cannot be written")
    assert said is not None
    logged_at, error = said
    assert error.endswith(f"spool {spool} cannot be written: database or disk is full "
                          "(SQLITE_FULL); " + error.split("(SQLITE_FULL); ", 1)[1])
    assert re.search(r"\(SQLITE_FULL\); [\d.]+ [kMGT]?B free on its file system\. ", error)
    if filled_by == "tmpfs":
        assert "; 0 B free on its file system. " in error

    # the jobs go on while nothing can be spooled, and the watchdog is fed
    polled, fed = polls(), notify.messages.count("WATCHDOG=1")
    _wait("polls go on", lambda: polls() >= polled + 4)
    _wait("the watchdog is fed", lambda: notify.messages.count("WATCHDOG=1") >= fed + 1)
    spooled = _spooled_power(spool)
    assert spooled

    # room again: the filler goes (tmpfs) and the store comes back (both)
    if filler is not None:
        filler.unlink()
    server.start()
    space_at = time.monotonic()
    space_ns = time.time_ns()
    _wait("a poll after the room came back is stored", lambda: _count(
        server, f'SELECT count("value") FROM "power_w" WHERE time >= {space_ns}') > 0)
    stored_at = time.monotonic()
    _wait("the lost lines are said",
          lambda: daemon.first(r"can be written again after \d+ s; \d+ lines could not"))
    again = daemon.first(r"can be written again after \d+ s; \d+ lines could not")
    assert again is not None
    found = re.search(r"; (\d+) lines could not be spooled meanwhile and are lost "
                      r"\(disk_full: (\d+)\)$", again[1])
    assert found is not None and found[1] == found[2]
    lost = int(found[1])
    assert lost > 0
    dropped_query = ('SELECT sum("value") FROM "collector" WHERE "metric" = \'dropped\' '
                     'AND "reason" = \'disk_full\'')
    _wait("the dropped metric is stored", lambda: server.rows(dropped_query, "energy"))
    assert server.rows(dropped_query, "energy")[0]["sum"] == float(lost)

    daemon.proc.send_signal(signal.SIGTERM)
    term_at = time.monotonic()
    code = daemon.proc.wait(TIMEOUT_STOP_S)
    exit_at = time.monotonic()
    daemon._reader.join(5)
    log = daemon.log()
    assert code == 0, log[-3000:]

    # once: the spool's error and the job's failure; never APScheduler's skipped runs
    written = r"ERROR collector\.pipeline\.spool: spool .* cannot be written"
    assert len(re.findall(written, log)) == 1, log
    assert len(re.findall(r"fritzbox:home:poll failed: SpoolUnwritable", log)) == 1, log
    assert "maximum number of running instances" not in log
    assert "Traceback" not in log
    assert notify.messages[-1] == "STOPPING=1\nSTATUS=stopping"
    # nothing that was spooled is lost
    assert spooled <= _stored_power(server)

    if full_at is not None:
        print(f"\n[{filled_by}] disk full -> first log line: {logged_at - full_at:.2f} s")
    print(f"[{filled_by}] space again -> first stored poll: {stored_at - space_at:.2f} s")
    print(f"[{filled_by}] SIGTERM -> exit: {exit_at - term_at:.2f} s")
