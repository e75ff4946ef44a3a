"""The soak's count of readings lost: what the simulators served against what was stored.

Each source's answers, as the simulator served them (with the time it served them), are
turned into readings by the collector's own parsers, then looked for in the store:

* A reading stamped with a time of its own (a FRITZ! button's last press, an Overkiz cloud
  event's ``timestamp``) is one point at that time, whichever answers repeat it.
* A reading stamped with the time of its poll is looked for in the span the poll's time must
  lie in. The FRITZ!Box and Thinknx jobs stamp a poll before they ask: after the previous
  answer to the same question and not after this answer. The Overkiz jobs stamp what they
  read after the answer arrived: from this answer on, and before the next answer of the
  same kind (the next request is only sent afterwards).

A point counts for the readings of one answer at most once per key (measurement, device and
the other tags but the room, which a site's room rules may change).
"""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from collector.errors import ParseError
from collector.model import Reading
from collector.sources.fritzbox.parse import parse_devicelist
from collector.sources.overkiz.parse import Device, State, parse_events, parse_states
from collector.sources.overkiz.readings import STATUS_STATE, availability, reading, stamp
from collector.sources.thinknx.parse import (
    ObjectInfo,
    object_readings,
    parse_server_status,
    parse_status,
)

#: A point's identity without its time: measurement, device_id and the other tags.
Key = tuple[str, str, frozenset[tuple[str, str]]]
_BASE_TAGS = frozenset({"source", "site", "device_id", "device", "room"})
#: The span a poll's readings are looked for in when no later answer bounds it.
_LAST_SPAN_S = 60.0
#: A stored point: (time in ns, key), sorted by time.
Stored = list[tuple[int, Key]]


@dataclass(frozen=True, slots=True)
class KnxAnswer:
    """A Thinknx API answer: served at ``at``, for ``controller`` and object ``guid``
    ("" for the server status)."""

    at: float
    controller: str
    guid: str
    body: bytes


@dataclass(frozen=True, slots=True)
class OverkizAnswer:
    """An Overkiz answer: ``kind`` "events" (an event fetch) or "states" (the states of
    the device ``device_url``), served at ``at``."""

    at: float
    kind: str
    device_url: str
    body: bytes


@dataclass(slots=True)
class Expected:
    """Readings to find: per span [lo, hi) in ns the keys (with how often), and the points
    with a time of their own."""

    spans: list[tuple[int, int, Counter[Key]]] = field(default_factory=list)
    exact: set[tuple[Key, int]] = field(default_factory=set)

    def add(self, readings: Iterable[Reading], polled: datetime, lo_s: float, hi_s: float,
            *, right_closed: bool) -> None:
        """``readings`` of one answer; those stamped ``polled`` are looked for between
        ``lo_s`` and ``hi_s`` (left-closed, or with ``right_closed`` right-closed)."""
        keys: Counter[Key] = Counter()
        for r in readings:
            if r.time == polled:
                keys[key_of(r)] += 1
            else:
                self.exact.add((key_of(r), ns(r.time)))
        lo, hi = int(lo_s * 1e9), int(hi_s * 1e9)
        if right_closed:  # (lo, hi] as [lo + 1, hi + 1)
            lo, hi = lo + 1, hi + 1
        if keys:
            self.spans.append((lo, hi, keys))


def ns(moment: datetime) -> int:
    """A reading's time as the store keeps it (microseconds, in ns)."""
    return int(moment.timestamp() * 1_000_000) * 1000


def key_of(r: Reading) -> Key:
    return tag_key(r.measurement, dict((("device_id", r.device_id), *r.tags)))


def tag_key(measurement: str, tags: dict[str, str]) -> Key:
    rest = frozenset((k, v) for k, v in tags.items() if k not in _BASE_TAGS)
    return measurement, tags.get("device_id", ""), rest


def stored_points(store: Path, source: str) -> Stored:
    """The points of ``source`` in the embedded store, by time."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT measurement, time_ns, tags FROM points "
                          "WHERE json_extract(tags, '$.source') = ?", (source,)).fetchall()
    finally:
        db.close()
    return sorted(((int(t), tag_key(m, json.loads(tags))) for m, t, tags in rows),
                  key=lambda point: point[0])


def count_lost(expected: Expected, stored: Stored) -> tuple[int, int]:
    """(readings counted, readings lost)."""
    times = [t for t, _ in stored]
    lost = len(expected.exact - {(k, t) for t, k in stored})
    counted = len(expected.exact)
    for lo, hi, keys in expected.spans:
        inside = stored[bisect_left(times, lo):bisect_left(times, hi)]
        found = Counter(k for _, k in inside if k in keys)
        lost += sum((keys - found).values())
        counted += sum(keys.values())
    return counted, lost


def _in(at: float, start: float, end: float) -> bool:
    return start <= at < end


def fritzbox_expected(served: Sequence[tuple[float, bytes]], site: str, start: float,
                      end: float) -> Expected:
    """The device-list answers (served time, XML) served in ``[start, end)``."""
    out = Expected()
    served = sorted(served)
    for i, (s, xml) in enumerate(served):
        if not _in(s, start, end):
            continue
        polled = datetime.fromtimestamp(s, UTC)
        before = served[i - 1][0] if i > 0 else s - _LAST_SPAN_S
        out.add(parse_devicelist(xml, site=site, time=polled).readings, polled, before, s,
                right_closed=True)
    return out


def thinknx_expected(served: Sequence[KnxAnswer], objects: Sequence[ObjectInfo], *,
                     site: str, server_id: str, start: float, end: float) -> Expected:
    """The status answers (objects and server) served in ``[start, end)``; an answer the
    collector cannot read (an error, a challenge) is expected to give nothing."""
    out = Expected()
    by_guid = {o.guid: o for o in objects}
    previous: dict[tuple[str, str], float] = {}
    for answer in sorted(served, key=lambda a: a.at):
        question = (answer.controller, answer.guid)
        before = previous.get(question, answer.at - _LAST_SPAN_S)
        previous[question] = answer.at
        if not _in(answer.at, start, end):
            continue
        polled = datetime.fromtimestamp(answer.at, UTC)
        try:
            if answer.controller == "system/serverStatus":
                readings: Sequence[Reading] = parse_server_status(
                    answer.body, site=site, device_id=server_id, device=f"{site} server",
                    time=polled).readings
            elif (obj := by_guid.get(answer.guid)) is not None:
                value = parse_status(answer.body, controller=answer.controller,
                                     guid=answer.guid, what=obj.name)
                readings = object_readings(obj, {answer.controller: value}, site=site,
                                           time=polled)
            else:
                continue
        except ParseError:
            continue
        out.add(readings, polled, before, answer.at, right_closed=True)
    return out


def _state_read(device: Device, states: Sequence[State], polled: datetime,
                site: str) -> list[Reading]:
    """What a state read gives: the device's availability at the read; each state at its
    own lastUpdateTime (at the read without one, and then only while it is available)."""
    status = next((s.value for s in states if s.name == STATUS_STATE), None)
    available = device.available if not isinstance(status, str) else status != "unavailable"
    out = [availability(device, available, polled, site=site)]
    for s in states:
        if s.name == STATUS_STATE or (s.updated_ms is None and not available):
            continue
        if (r := reading(device, s, min(stamp(s.updated_ms, polled), polled), site=site)):
            out.append(r)
    return out


def overkiz_expected(served: Sequence[OverkizAnswer], devices: Sequence[Device], *,
                     site: str, start: float, end: float) -> Expected:
    """The event fetches and state reads served in ``[start, end)``."""
    out = Expected()
    by_url = {d.url: d for d in devices}
    answers = sorted(served, key=lambda a: a.at)
    for i, answer in enumerate(answers):
        if not _in(answer.at, start, end):
            continue
        after = next((a.at for a in answers[i + 1:] if a.kind == answer.kind),
                     answer.at + _LAST_SPAN_S)
        polled = datetime.fromtimestamp(answer.at, UTC)
        try:
            doc = json.loads(answer.body)
            readings: list[Reading] = []
            if answer.kind == "events":
                for change in parse_events(doc).items:
                    device = by_url.get(change.device_url)
                    if device is not None:
                        when = stamp(change.time_ms, polled)
                        readings += [r for s in change.states
                                     if (r := reading(device, s, when, site=site))]
            elif (device := by_url.get(answer.device_url)) is not None:
                readings = _state_read(device, parse_states(doc).items, polled, site)
        except (ParseError, ValueError):
            continue
        out.add(readings, polled, answer.at, after, right_closed=False)
    return out
