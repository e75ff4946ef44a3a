"""The lines of one job run as one spool chunk: readings encoded part by part, and readings
given again (``model.Again``) written from the text kept of them at an earlier poll."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, cast

from collector.errors import EncodeError
from collector.lineprotocol import Encoder
from collector.model import Again, Reading, ReadingBatch
from collector.rooms import RoomMap


class _Kept(NamedTuple):
    """What a chunk encoder made of the readings of an ``Again``: the lines of those taking
    the poll's time, without their timestamp; the whole lines of those keeping their own;
    (measurement, device_id, error) of those it could not encode; for each reading of the
    template, the place of its line in ``polled`` (-1: none there) and the series part of
    its line when it is a plain value (None: a state, with a label), for writing a new
    value to the same series without looking the series up again."""

    polled: tuple[str, ...]
    own: tuple[str, ...]
    drops: tuple[tuple[str, str, str], ...]
    at: tuple[int, ...]
    series: tuple[str | None, ...]


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
        #: what this encoder keeps in an ``Again``'s memo: its text, and of its fresh readings
        self._key = (encoder, rooms)
        self._fresh_key = (encoder, rooms, "fresh")
        #: the poll time of the last ``Again``, its timestamp text, and that with a newline
        self._time: datetime | None = None
        self._suffix = self._between = ""
        self._parts: list[str] = []
        self.lines = 0
        self.dropped = 0
        #: The first encoding error per (measurement, device_id) of the dropped readings.
        self.drops: dict[tuple[str, str], str] = {}

    def add(self, readings: Sequence[Reading]) -> None:
        """A ``ReadingSink``: never raises for a reading it cannot encode."""
        if type(readings) is ReadingBatch:
            key, out = self._key, self._parts
            for part in readings.parts:
                if type(part) is not Again:
                    self.add(cast(Sequence[Reading], part))
                    continue
                kept = cast("_Kept | None", part.memo.get(key))
                if kept is None or part.fresh or kept.own or kept.drops or not kept.polled or (
                        part.time is not self._time):
                    self._again(part)
                    continue
                # the usual device given again: its kept lines at this poll's time
                out.append(self._between.join(kept.polled) + self._suffix)
                self.lines += len(kept.polled)
            return
        if not readings:
            return
        if self._rooms:
            # the one place where every reading gets its house-wide room (collector/rooms.py)
            readings = self._rooms.apply(readings)
        try:
            lines = self._encoder.encode_many(readings)
        except EncodeError:
            lines = self._encode_one_by_one(readings)
        if lines:
            self._parts.append("\n".join(lines))
            self.lines += len(lines)

    def _again(self, part: Again) -> None:
        """Readings given again at a new poll time: the text made of them at an earlier
        poll (kept in ``part.memo``, rooms applied), with the new timestamp."""
        if part.time is not self._time:  # the parts of one poll share their time
            try:
                suffix = self._encoder.suffix(part.time)
            except EncodeError:  # a time line protocol cannot carry: each reading is counted
                self._add_one_by_one(part.readings())
                return
            self._time, self._suffix, self._between = part.time, suffix, suffix + "\n"
        kept = cast("_Kept | None", part.memo.get(self._key))
        if kept is None:
            kept = self._keep(part.template)
            part.memo[self._key] = kept
        polled: Sequence[str] = kept.polled
        if part.fresh:
            made = self._fresh(part, kept)
            if made is None:  # a fresh value the encoder refuses: each reading is counted
                self._add_one_by_one(part.readings())
                return
            polled = made
        if polled:
            self._parts.append(self._between.join(polled) + self._suffix)
        if kept.own:
            self._parts.append("\n".join(kept.own))
        self.lines += len(polled) + len(kept.own)
        for measurement, device_id, error in kept.drops:
            self.dropped += 1
            self.drops.setdefault((measurement, device_id), error)

    def _fresh(self, part: Again, kept: _Kept) -> tuple[str, ...] | None:
        """The lines of ``part`` taking the poll's time (without their timestamp), from
        ``kept`` but those at its ``fresh`` positions made anew; None when one of those
        cannot be encoded. What is made is kept too, for as long as the same template is
        given again (a device unchanged since its meter last changed)."""
        last = cast("tuple[object, tuple[str, ...]] | None", part.memo.get(self._fresh_key))
        if last is not None and last[0] is part.template:
            return last[1]
        polled, at, series, template = list(kept.polled), kept.at, kept.series, part.template
        for i in part.fresh:
            if at[i] < 0:
                return None
            reading = template[i][0]
            if (prefix := series[i]) is not None and reading.label is None:
                polled[at[i]] = f"{prefix} value={reading.value!r}"  # as Encoder.body
                continue
            if self._rooms:
                reading = self._rooms.apply([reading])[0]
            try:
                polled[at[i]] = self._encoder.body(reading)
            except EncodeError:
                return None
        made = tuple(polled)
        part.memo[self._fresh_key] = (part.template, made)
        return made

    def _keep(self, template: tuple[tuple[Reading, bool], ...]) -> _Kept:
        readings: Sequence[Reading] = [r for r, _ in template]
        if self._rooms:
            readings = self._rooms.apply(readings)
        polled: list[str] = []
        own: list[str] = []
        drops: list[tuple[str, str, str]] = []
        at: list[int] = []
        series: list[str | None] = []
        for r, (_, at_poll) in zip(readings, template, strict=True):
            at.append(len(polled) if at_poll else -1)
            series.append(None)
            try:
                if at_poll:
                    polled.append(self._encoder.body(r))
                    if r.label is None:
                        series[-1] = self._encoder.prefix(r)
                else:
                    own.append(self._encoder.encode(r))
            except EncodeError as err:
                at[-1] = -1
                drops.append((r.measurement, r.device_id, str(err)))
        return _Kept(tuple(polled), tuple(own), tuple(drops), tuple(at), tuple(series))

    def _add_one_by_one(self, readings: Sequence[Reading]) -> None:
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
