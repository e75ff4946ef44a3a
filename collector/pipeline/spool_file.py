"""The spool's file: its tables, who may read it, and what is read back of it as records."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: SQLite page cache of the spool connection in KiB (SQLite's default: 2,000 KiB). Chunks are
#: written once and read once: a larger cache would save no I/O, only hold resident memory.
CACHE_KIB = 256

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    n INTEGER NOT NULL,
    lines TEXT NOT NULL,
    queued_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    status INTEGER NOT NULL,
    error TEXT NOT NULL,
    failed_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    pending: int
    dead_letters: int
    dropped_total: int
    delivered_total: int
    oldest_queued_ns: int | None
    path: Path


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    line: str
    status: int  # the store's HTTP status; 0 when its answer could not be read
    error: str
    failed_ns: int


def private_file(path: Path) -> None:
    """Create ``path`` (and its parents) readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    else:
        os.chmod(path, 0o600)
