"""A clock that has not been set yet writes nothing.

A Raspberry Pi has no battery-backed clock: until NTP sets it after boot, it starts at
1970 or at the time saved at the last shutdown. Readings polled then would be stored with
that time, far from where they belong. The collector knows a time the real one cannot be
before: when its installed version was built (the newest of its own module files); a poll
whose own timestamp (this machine's clock, not a device's history) lies before it is not
made, and that is said once, and once more when the clock is right. A month of margin
(``MARGIN``) keeps a build machine's clock that ran ahead from stopping the polls.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

#: How far the times of the installed files may lie ahead of the real time without polls
#: being refused: a source tree or image made on a machine whose clock was ahead keeps that
#: machine's times. A clock not set yet is off by far more (1970, or months behind).
MARGIN = timedelta(days=30)


def built_at() -> datetime:
    """When the installed version was built: the newest modification time of the package's
    own modules (a wheel or a container image keeps the times of its build)."""
    folder = Path(__file__).resolve().parents[1]  # the package: collector/
    newest = max((p.stat().st_mtime for p in folder.glob("*.py")), default=0.0)
    return datetime.fromtimestamp(newest, UTC)


class ClockGuard:
    """Whether this machine's clock can be right: not before ``not_before``."""

    def __init__(self, not_before: datetime | None = None) -> None:
        self.not_before = not_before if not_before is not None else built_at() - MARGIN
        self._said = False

    def plausible(self, now: datetime) -> bool:
        """False while ``now`` lies before ``not_before``; said once per change."""
        if now >= self.not_before:
            if self._said:
                self._said = False
                log.warning("the clock is set now (%s): polling again", _utc(now))
            return True
        if not self._said:
            self._said = True
            log.error("this machine's clock says %s, before this version of the collector was "
                      "built (%s): no poll is made and nothing is written until the clock is "
                      "set (NTP)", _utc(now), _utc(self.not_before + MARGIN))
        return False


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
