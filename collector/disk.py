"""What a failed write of one of the collector's SQLite files says about its disk.

The spool and the embedded store name the file, SQLite's error and the space left on the
file system when a write fails, so that a full disk is recognised from the log alone.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

#: SQLite's primary result codes for a file that cannot grow (https://sqlite.org/rescode.html):
#: SQLITE_FULL (13), also for a file at its ``max_page_count``; SQLite reports ENOSPC as
#: SQLITE_FULL as well.
_FULL_CODES = frozenset({13})

#: Why lines could not be written, as the ``reason`` tag of the ``dropped`` self-metric.
DISK_FULL = "disk_full"
WRITE_ERROR = "write_error"
STUCK = "stuck"


def reason_of(err: BaseException) -> str:
    """``DISK_FULL`` for SQLITE_FULL and ENOSPC, else ``WRITE_ERROR``."""
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _FULL_CODES:
        return DISK_FULL
    if isinstance(err, OSError) and err.errno == 28:  # ENOSPC
        return DISK_FULL
    return WRITE_ERROR


def describe(err: BaseException) -> str:
    """SQLite's message with its error name, e.g. 'database or disk is full (SQLITE_FULL)'."""
    name = getattr(err, "sqlite_errorname", None)
    text = str(err) or type(err).__name__
    return f"{text} ({name})" if isinstance(err, sqlite3.Error) and name else text


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of ``path`` (None when
    it cannot be told)."""
    folder = path if path.is_dir() else path.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def free_text(path: Path) -> str:
    """'12.3 MB free on its file system', or that it cannot be told."""
    free = free_bytes(path)
    if free is None:
        return "free space on its file system unknown"
    return f"{human_bytes(free)} free on its file system"


def human_bytes(n: int) -> str:
    """``n`` bytes in decimal units: '0 B', '812.0 kB', '12.3 MB'."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")

