"""The reading: one numeric value of one quantity of one device at one instant."""

from __future__ import annotations

from datetime import UTC, datetime
from math import isfinite as _isfinite
from typing import NamedTuple

from collector.errors import EncodeError

Tags = tuple[tuple[str, str], ...]


class _ReadingFields(NamedTuple):
    measurement: str
    value: float
    time: datetime
    source: str
    site: str
    device_id: str
    device: str
    tags: Tags = ()
    label: str | None = None


class Reading(_ReadingFields):
    """One point, immutable.

    ``value`` is always a finite float in the unit the schema table gives for
    ``measurement`` (ints and bools are turned into floats, so one series never changes
    field type). ``time`` is an aware datetime (written as UTC). ``tags`` holds the extra
    tags (room, model, kind, name, period, scope, ...) beyond the ones every point carries,
    sorted by key. ``label`` is the readable text of a ``state`` reading.

    A named tuple rather than a frozen dataclass: parsers create one per value, and this
    is about three times cheaper to build.
    """

    __slots__ = ()

    def __new__(
        cls,
        measurement: str,
        value: float,
        time: datetime,
        source: str,
        site: str,
        device_id: str,
        device: str,
        tags: Tags = (),
        label: str | None = None,
    ) -> Reading:
        if type(value) is not float:
            value = float(value)
        if not _isfinite(value):
            raise EncodeError(f"{measurement} of {device_id!r}: value {value!r} is not finite")
        if time.tzinfo is None:
            raise EncodeError(f"{measurement} of {device_id!r}: naive timestamp")
        return tuple.__new__(
            cls, (measurement, value, time, source, site, device_id, device, tags, label)
        )

    def tag(self, key: str) -> str | None:
        for k, v in self.tags:
            if k == key:
                return v
        return None


def utc_now(*, resolution_s: int = 1) -> datetime:
    """The current UTC time truncated to ``resolution_s`` seconds (poll timestamps)."""
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % resolution_s, UTC)


def make_tags(**tags: str | None) -> Tags:
    """Extra tags from keyword arguments, dropping None and empty values, sorted by key."""
    return tuple(sorted((k, v) for k, v in tags.items() if v))
