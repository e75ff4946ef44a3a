"""``collector run`` and its supervisor: systemd's notify socket (a real unix datagram
socket bound here), the watchdog fed only while no job is stuck, the heartbeat file that
``collector health`` reads, an overrun logged once."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.config import Config, SpoolConfig, StoreConfig
from collector.model import Reading
from collector.pipeline.app import App
from collector.pipeline.daemon import run
from collector.pipeline.supervisor import check_heartbeat
from collector.sources.base import Source

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class NotifySocket:
    """What systemd listens on: a unix datagram socket; the datagrams as they arrive."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="notify-", dir="/tmp")  # short: sun_path limit
        self.path = os.path.join(self._dir, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self.messages: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096)
            except OSError:
                return
            self.messages.append(data.decode())

    def close(self) -> None:
        self._sock.close()
        os.unlink(self.path)
        os.rmdir(self._dir)


@pytest.fixture
def notify(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    monkeypatch.setenv("WATCHDOG_USEC", "300000")  # fed every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


class SometimesStuck(Source):
    """A plug polled every 0.2 s; while ``hang`` is set a poll waits for ``release``."""

    kind = "fritzbox"

    def __init__(self) -> None:
        super().__init__("home", 0.2)
        self.hang = False
        self.release = asyncio.Event()
        self.polls = 0

    async def poll(self) -> Sequence[Reading]:
        self.polls += 1
        if self.hang:
            await self.release.wait()
        return [Reading("power_w", 1.0, T0, "fritzbox", "home", "0815", "Plug")]


async def _until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_the_watchdog_is_not_fed_while_a_job_is_stuck(
        tmp_path: Path, notify: NotifySocket, caplog: pytest.LogCaptureFixture) -> None:
    config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
    heartbeat = tmp_path / "collector.alive"
    source = SometimesStuck()
    seen: dict[str, object] = {}

    def said(text: str) -> Callable[[], bool]:
        return lambda: any(text in r.getMessage() for r in caplog.records)

    async def go() -> None:
        app = App(config, sources=[source])
        stop = asyncio.Event()

        async def scenario() -> None:
            try:
                await _until(lambda: source.polls >= 3 and notify.messages.count("WATCHDOG=1") >= 3)
                seen["healthy"] = check_heartbeat(heartbeat, within_s=5.0)
                source.hang = True  # the next poll never ends by itself
                await _until(said("the collector does not work: fritzbox:home:poll has been "
                                  "running for"))
                mark = len(notify.messages)
                stamp = heartbeat.stat().st_mtime
                await asyncio.sleep(1.0)  # ten feeding intervals
                seen["while stuck"] = notify.messages[mark:]
                seen["heartbeat moved"] = heartbeat.stat().st_mtime != stamp
                seen["stuck"] = check_heartbeat(heartbeat, within_s=0.5)
                source.hang = False
                source.release.set()
                mark = len(notify.messages)
                await _until(lambda: "WATCHDOG=1" in notify.messages[mark:])
                await _until(said("the collector works again"))
            finally:
                stop.set()  # also when a step above failed

        task = asyncio.create_task(scenario())
        await run(app, stop, stuck_min_s=0.5, job_grace_s=1.0)
        await task

    with caplog.at_level(logging.INFO):
        asyncio.run(go())
    assert notify.messages[0] == "READY=1\nSTATUS=collecting"
    assert notify.messages[-1] == "STOPPING=1\nSTATUS=stopping"
    assert seen["healthy"][0] is True  # type: ignore[index]
    assert seen["while stuck"] == []
    assert seen["heartbeat moved"] is False
    ok, text = seen["stuck"]  # type: ignore[misc]
    assert ok is False and text.startswith("no sign of life for ")
    assert not heartbeat.exists()  # removed at the end: nothing runs any more
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    stuck = [m for level, m in messages if m.startswith("the collector does not work")]
    assert len(stuck) == 1 and stuck[0].endswith(
        "; the watchdog is no longer fed, a supervisor will restart it")
    # the overrun is told once when it is noticed, once when it ends; never per skipped run
    overrun = [m for _, m in messages if m.startswith("job fritzbox:home:poll ")]
    assert len(overrun) == 2
    assert overrun[0].startswith("job fritzbox:home:poll has been running for ")
    assert overrun[0].endswith(" s, longer than its interval of 0.2 s; its next runs wait "
                               "until it ends")
    assert overrun[1].startswith("job fritzbox:home:poll ended after ")
    assert not [m for _, m in messages if "maximum number of running instances" in m]


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(f'[spool]\npath = "{tmp_path / "data" / "spool.sqlite3"}"\n')
    return path


def test_collector_health_reads_the_heartbeat(tmp_path: Path) -> None:
    config = _config_file(tmp_path)
    heartbeat = tmp_path / "data" / "collector.alive"
    runner = CliRunner()
    absent = runner.invoke(main, ["health", "--config", str(config)])
    assert absent.exit_code == 1
    assert absent.output == (f"no heartbeat file {heartbeat}: the daemon is not running "
                             "(or not yet)\n")
    heartbeat.parent.mkdir()
    heartbeat.touch()
    fresh = runner.invoke(main, ["health", "--config", str(config)])
    assert fresh.exit_code == 0 and fresh.output.startswith("alive: last sign of life ")
    old = time.time() - 200
    os.utime(heartbeat, (old, old))
    stale = runner.invoke(main, ["health", "--config", str(config)])
    assert stale.exit_code == 1
    assert stale.output.startswith("no sign of life for 20")
    assert stale.output.endswith(f" s (heartbeat file {heartbeat}): the daemon hangs or a job "
                                 "is stuck; see its log\n")
    assert runner.invoke(main, ["health", "--config", str(config), "--within", "300"]
                         ).exit_code == 0
