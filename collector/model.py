"""The reading: one numeric value of one quantity of one device at one instant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from collector.errors import EncodeError

Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Reading:
    """One point.

    ``value`` is always a float in the unit the schema table gives for ``measurement``.
    ``time`` is an aware UTC datetime. ``tags`` holds the extra tags (room, model, kind,
    name, period, scope, ...) beyond the ones every point carries. ``label`` is the
    readable text of a ``state`` reading.
    """

    measurement: str
    value: float
    time: datetime
    source: str
    site: str
    device_id: str
    device: str
    tags: Tags = ()
    label: str | None = None

    def __post_init__(self) -> None:
        if type(self.value) is not float:  # ints and bools become floats: one field type
            object.__setattr__(self, "value", float(self.value))
        if not math.isfinite(self.value):
            raise EncodeError(
                f"{self.measurement} of {self.device_id!r}: value {self.value!r} is not finite"
            )
        if self.time.tzinfo is None:
            raise EncodeError(f"{self.measurement} of {self.device_id!r}: naive timestamp")

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
