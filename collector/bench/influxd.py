"""A throwaway real InfluxDB 1.x server (Debian's ``influxdb`` package).

Used by the tests and the benchmark: its own temporary directory, free loopback ports,
no reporting, stopped and removed afterwards.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def influxd_binary() -> str | None:
    if found := shutil.which("influxd"):
        return found
    return "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None


class Influxd:
    """One influxd process with its own data directory and ports."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = workdir / "influxdb.conf"
        self.config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
  index-version = "inmem"
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"""
        )

    def start(self) -> None:
        log = (self.workdir / "influxd.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-config", str(self.config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "influxd exited: " + (self.workdir / "influxd.log").read_text()[-2000:]
                )
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("influxd did not answer /ping within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        resp = httpx.post(f"{self.url}/query", params=params, timeout=30)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def create_db(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def rows(self, q: str, db: str) -> list[dict[str, Any]]:
        """Flatten an InfluxQL answer into dicts (tags merged in for GROUP BY answers)."""
        out: list[dict[str, Any]] = []
        for result in self.query(q, db).get("results", []):
            if "error" in result:
                raise RuntimeError(result["error"])
            for series in result.get("series", []):
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values, strict=True))
                    row.update(series.get("tags", {}))
                    row["_measurement"] = series.get("name")
                    out.append(row)
        return out

    def write(self, db: str, body: str) -> httpx.Response:
        return httpx.post(f"{self.url}/write", params={"db": db, "precision": "ns"},
                          content=body.encode(), timeout=30)


@contextmanager
def running_influxd(workdir: Path, binary: str | None = None) -> Iterator[Influxd]:
    binary = binary or influxd_binary()
    if binary is None:
        raise FileNotFoundError("influxd not found (Debian: apt-get install influxdb)")
    server = Influxd(workdir, binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
