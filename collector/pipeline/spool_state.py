"""Whether the spool's file can be written: said once when it cannot, once when it can again.

A write of the spool fails when its file system is full (or the file reached a size cap:
SQLITE_FULL), on any other write error, and when the spool's thread does not answer within
its bound (a disk that hangs). The first failure is an error in the log naming the file, the
cause and the space left; further failures of the same kind are not logged again. The lines
of job runs that could not be written are lost: they are counted by reason until the spool
takes lines again, when the count is logged and handed on (``take_lost``) to become the
``dropped`` self-metric.

On a file system that is almost full, a small chunk may still fit where the next larger one
does not, and removing delivered chunks always works: so the spool counts as writable again
only after ``RECOVER_APPENDS`` appends in a row went through and ``RECOVER_S`` passed since
the last failure. Until then a failure belongs to the same episode and is not logged again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from pathlib import Path

from collector.disk import STUCK, free_text, reason_of
from collector.errors import TransientError

log = logging.getLogger("collector.pipeline.spool")


class SpoolUnwritable(TransientError):
    """The spool cannot take lines now; ``reason`` is ``disk_full``, ``write_error`` or
    ``stuck`` (collector/disk.py)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


#: Appends in a row that must go through before the spool counts as writable again ...
RECOVER_APPENDS = 3
#: ... and how long after its last failure.
RECOVER_S = 10.0


class WriteHealth:
    """The write state of one spool file and the lines lost while it could not be written."""

    def __init__(self, path: Path) -> None:
        self._path = path
        #: (reason, monotonic time of the first failure) while writes fail
        self._failing: tuple[str, float] | None = None
        self._last_failure = 0.0
        self._clean_appends = 0
        self.recover_appends = RECOVER_APPENDS
        self.recover_s = RECOVER_S
        self._lost: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def failing(self) -> str | None:
        """The reason writes fail now, or None while they work."""
        failing = self._failing
        return None if failing is None else failing[0]

    def failed(self, reason: str, detail: str) -> SpoolUnwritable:
        """A write failed: log it if that is news; the error for its caller."""
        with self._lock:
            news = self._failing is None or self._failing[0] != reason
            now = time.monotonic()
            if news:
                self._failing = (reason, now)
            self._last_failure = now
            self._clean_appends = 0
        if news:
            log.error("spool %s cannot be written: %s; %s. Readings that cannot be spooled "
                      "are lost and counted until it can be written again",
                      self._path, detail, free_text(self._path))
        else:
            log.debug("spool %s still cannot be written: %s", self._path, detail)
        return SpoolUnwritable(f"spool {self._path} cannot take lines: {detail}", reason=reason)

    def wrote(self, *, appended: bool) -> None:
        """A write went through (``appended``: one that added lines); once enough did after
        the last failure, the spool is writable again, and that is logged."""
        if self._failing is None or not appended:
            return
        with self._lock:
            self._clean_appends += 1
            if (self._clean_appends < self.recover_appends
                    or time.monotonic() - self._last_failure < self.recover_s):
                return
            failing, self._failing = self._failing, None
            lost = dict(self._lost)
        if failing is None:
            return
        since = time.monotonic() - failing[1]
        if lost:
            log.warning("spool %s can be written again after %.0f s; %d lines could not be "
                        "spooled meanwhile and are lost (%s)", self._path, since,
                        sum(lost.values()), _reasons(lost))
        else:
            log.warning("spool %s can be written again after %.0f s; no lines were lost",
                        self._path, since)

    def lose(self, reason: str, lines: int) -> None:
        """``lines`` of a job run could not be written."""
        if lines > 0:
            with self._lock:
                self._lost[reason] += lines

    def lose_unless_written(self, lines: int, under_way: asyncio.Future[object]) -> None:
        """``lines`` are being written on the spool's thread past their caller's bound:
        counted as lost if that write fails in the end."""

        def settled(future: asyncio.Future[object]) -> None:
            if future.cancelled():
                self.lose(STUCK, lines)
            elif (err := future.exception()) is not None:
                self.lose(reason_of(err), lines)

        under_way.add_done_callback(settled)

    def lost(self) -> dict[str, int]:
        """The lines lost by reason and not yet taken."""
        with self._lock:
            return dict(self._lost)

    def take_lost(self) -> dict[str, int]:
        """The lines lost by reason since the last call (the count starts again); nothing
        while the spool does not count as writable again."""
        with self._lock:
            if self._failing is not None:
                return {}
            lost, self._lost = dict(self._lost), Counter()
        return lost

    def give_back(self, lost: dict[str, int]) -> None:
        """Counts taken that could not be handed on after all."""
        with self._lock:
            self._lost.update(lost)


def _reasons(lost: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(lost.items()))
