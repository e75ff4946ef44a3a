"""What a supervisor sees of ``collector run``: systemd's notify protocol and a heartbeat file.

systemd (``Type=notify``) learns that the daemon is ready (``READY=1``), that it stops
(``STOPPING=1``) and, while ``WatchdogSec`` is set, that it still works (``WATCHDOG=1``):
a datagram to the unix socket named by ``$NOTIFY_SOCKET`` (sd_notify(3); a name starting
with ``@`` is in the abstract namespace). Without ``$NOTIFY_SOCKET`` nothing is sent.

Where there is no systemd (a container), the daemon touches a heartbeat file beside the
spool each time it would feed the watchdog; ``collector health`` reads its age.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from collector.config import Config

log = logging.getLogger(__name__)

#: How often the heartbeat is touched where systemd gives no watchdog interval.
HEARTBEAT_S = 20.0
#: How old a heartbeat ``collector health`` still takes for a working daemon.
HEALTHY_WITHIN_S = 90.0
HEARTBEAT_NAME = "collector.alive"


class Notifier:
    """Messages to systemd over ``$NOTIFY_SOCKET``; nothing when it is not set."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        name = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + name[1:] if name.startswith("@") else name
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def active(self) -> bool:
        return bool(self._address)

    def notify(self, *states: str) -> None:
        """Send ``states`` (e.g. ``READY=1``) as one datagram; never raises, never blocks."""
        if not self._address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(states).encode(), self._address)
        except OSError as err:
            if not self._failed:  # said once: systemd may have gone away on purpose
                self._failed = True
                log.warning("cannot notify systemd at %s: %s", self._address.lstrip("\0"), err)
            return
        self._failed = False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """systemd's ``WatchdogSec`` for this process in seconds (``$WATCHDOG_USEC``, for the
    process ``$WATCHDOG_PID`` names if set), or None."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


def heartbeat_path(config: Config) -> Path:
    """The heartbeat file of the daemon running with ``config``: beside its spool."""
    return config.spool.path.parent / HEARTBEAT_NAME


class Heartbeat:
    """A file whose modification time says when the daemon last worked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._failed = False

    def beat(self) -> None:
        """Touch the file (creating it private to this user); a failure is said once."""
        try:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        except OSError as err:
            if not self._failed:
                self._failed = True
                log.warning("cannot touch the heartbeat file %s: %s", self.path, err)
            return
        self._failed = False

    def remove(self) -> None:
        """The daemon ended: no heartbeat to read any more."""
        with contextlib.suppress(OSError):
            self.path.unlink()


def check_heartbeat(path: Path, within_s: float = HEALTHY_WITHIN_S,
                    now: float | None = None) -> tuple[bool, str]:  # fmt: skip
    """Whether the daemon behind ``path`` worked within ``within_s``, and what to say."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"no heartbeat file {path}: the daemon is not running (or not yet)"
    except OSError as err:
        return False, f"cannot read the heartbeat file {path}: {err}"
    if age > within_s:
        return False, (f"no sign of life for {age:.0f} s (heartbeat file {path}): the daemon "
                       "hangs or a job is stuck; see its log")
    return True, f"alive: last sign of life {max(age, 0.0):.0f} s ago"
