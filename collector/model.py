"""The reading: one numeric value of one quantity of one device at one instant."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from math import isfinite as _isfinite
from typing import NamedTuple, overload

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


class Again(NamedTuple):
    """The readings of a device that said exactly what it said at an earlier poll, given
    again at the poll ``time``: the readings of ``template`` flagged True take ``time``, the
    others keep their own (a button press keeps the time of the press).

    ``memo`` belongs to the device and lives as long as it does: whoever turns the readings
    into text may keep there what it made of them (keyed by itself), so that the next poll
    of an unchanged device costs a lookup instead of new objects and new text. The readings
    at the positions ``fresh`` are the exception: their values change from poll to poll
    while the rest stays (a power meter's), so their text is made anew every time and never
    taken from ``memo``.
    """

    template: tuple[tuple[Reading, bool], ...]
    time: datetime
    memo: dict[object, object]
    fresh: tuple[int, ...] = ()

    def readings(self) -> list[Reading]:
        new, cls, time = tuple.__new__, Reading, self.time
        return [
            new(cls, (r[0], r[1], time, r[3], r[4], r[5], r[6], r[7], r[8])) if at_poll else r
            for r, at_poll in self.template
        ]


class ReadingBatch(Sequence[Reading]):
    """The readings of one poll as parts in order: readings as read, and readings given
    ``Again``. It is a sequence of readings like any other (made on first use); the app's
    encoder writes its ``Again`` parts from what it kept of them without making readings."""

    __slots__ = ("_flat", "parts")

    def __init__(self, parts: Iterable[Sequence[Reading] | Again] = ()) -> None:
        self.parts: tuple[Sequence[Reading] | Again, ...] = tuple(parts)
        self._flat: tuple[Reading, ...] | None = None

    def plus(self, readings: Sequence[Reading]) -> ReadingBatch:
        """These readings followed by ``readings``."""
        return ReadingBatch((*self.parts, readings)) if readings else self

    def _all(self) -> tuple[Reading, ...]:
        if self._flat is None:
            flat: list[Reading] = []
            for part in self.parts:
                flat.extend(part.readings() if isinstance(part, Again) else part)
            self._flat = tuple(flat)
        return self._flat

    def __len__(self) -> int:
        if self._flat is not None:
            return len(self._flat)
        return sum(len(p.template) if isinstance(p, Again) else len(p) for p in self.parts)

    @overload
    def __getitem__(self, index: int) -> Reading: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Reading, ...]: ...

    def __getitem__(self, index: int | slice) -> Reading | tuple[Reading, ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Reading]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadingBatch | tuple | list):
            return self._all() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReadingBatch({list(self._all())!r})"
