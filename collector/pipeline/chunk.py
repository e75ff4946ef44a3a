"""The lines of one job run as one spool chunk: readings encoded part by part."""

from __future__ import annotations

from collections.abc import Sequence

from collector.errors import EncodeError
from collector.lineprotocol import Encoder
from collector.model import Reading
from collector.pipeline.rooms import RoomMap


class Chunk:
    """The lines of one job run, encoded part by part (one spool chunk).

    Only the joined text of each part is kept: a job that streams its readings (a
    statistics round: some 20,000 readings from 100 devices) never holds all its readings,
    nor one object per line, at once. A reading that cannot be encoded (a parser let
    through what line protocol cannot carry, e.g. a time after 2262) is dropped and
    counted; it costs only itself, never the rest of the run.
    """

    def __init__(self, encoder: Encoder, rooms: RoomMap | None = None) -> None:
        self._encoder = encoder
        self._rooms = rooms
        self._parts: list[str] = []
        self.lines = 0
        self.dropped = 0
        #: The first encoding error per (measurement, device_id) of the dropped readings.
        self.drops: dict[tuple[str, str], str] = {}

    def add(self, readings: Sequence[Reading]) -> None:
        """A ``ReadingSink``: never raises for a reading it cannot encode."""
        if not readings:
            return
        if self._rooms:
            # the one place where every reading gets its house-wide room
            # (collector/pipeline/rooms.py)
            readings = self._rooms.apply(readings)
        try:
            lines = self._encoder.encode_many(readings)
        except EncodeError:
            lines = self._encode_one_by_one(readings)
        if lines:
            self._parts.append("\n".join(lines))
            self.lines += len(lines)

    def _encode_one_by_one(self, readings: Sequence[Reading]) -> list[str]:
        lines: list[str] = []
        for r in readings:
            try:
                lines.append(self._encoder.encode(r))
            except EncodeError as err:
                self.dropped += 1
                self.drops.setdefault((r.measurement, r.device_id), str(err))
        return lines

    def text(self) -> str:
        return "\n".join(self._parts)

    def body(self) -> bytes:
        """``text`` as UTF-8, encoded part by part: a part of ASCII alone (most devices)
        is copied as it is, while the text as a whole, once one name has an umlaut, would
        be encoded character by character (five times the time)."""
        return b"\n".join([part.encode("utf-8") for part in self._parts])
