"""What a device of the last poll gave, handed out again while its element is unchanged.

Between two polls most devices of a list say exactly the same (a thermostat's setpoints,
a window contact, a plug that is off): about two in three of the simulated house's, a
minute apart. A device whose bytes in the answer are the same as in the last poll of the
same site, in a document that starts the same way (declaration and root element, so the
same encoding and namespaces), gives the same device, readings and problems, except that
its readings carry the new poll's time; reading it again is skipped. Any change of the
element, its attributes or anything inside it makes it a new entry. Only the devices of
the last poll of each site are kept. No I/O here.

The answer is cut at the start tags of its devices and groups only when that cut is
certain: the document parsed (so every ``<`` in it is markup), has no comment, CDATA
section, processing instruction or document type (whose contents could look like a start
tag), and has as many such start tags as device and group elements, all children of the
root. Otherwise nothing is replayed.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any, NamedTuple, cast

from collector.errors import ParseError
from collector.model import Reading
from collector.sources.fritzbox.parse_stats import Element
from collector.sources.fritzbox.parse_tables import DeviceInfo

#: Sites whose last poll is kept (one per configured box; more is not expected).
_MAX_SITES = 64


class Replay(NamedTuple):
    """What one device element gave."""

    info: DeviceInfo | None
    member_id: str | None  # see _Static
    device_id: str
    #: each reading, and whether its time is the poll's (else its own, e.g. a button press)
    readings: tuple[tuple[Reading, bool], ...]
    problems: tuple[tuple[str, str | None], ...]  # (message, part)


class Replays(NamedTuple):
    """The devices of one poll of one site by their bytes; the next poll looks its devices
    up in the last one's and fills its own."""

    head: bytes  # the document up to its first device
    keys: list[bytes]  # each device's or group's bytes, in document order
    last: dict[bytes, Replay]
    now: dict[bytes, Replay]


#: site -> the start and the devices of its last poll
_LAST: dict[str, tuple[bytes, dict[bytes, Replay]]] = {}
#: a device or group start tag (the root's children; <devicelist>, <groupinfo> do not match)
_START = re.compile(rb"<(?:device|group)[ \t\r\n/>]")


def begin(site: str, xml: bytes, root: Element, devices: int) -> Replays | None:
    """The devices of the last poll of ``site``, and ``xml`` (a parsed answer whose root
    ``root`` has ``devices`` device and group children) cut into its devices; None when it
    cannot be cut with certainty."""
    if b"<!" in xml:  # comments, CDATA, a document type
        return None
    if sum(1 for _ in cast(Any, root).iter("device", "group")) != devices:
        return None  # device or group elements below the root's children
    declaration = xml.find(b"?>") + 2 if xml.startswith((b"<?xml", b"\xef\xbb\xbf<?xml")) else 0
    if xml.find(b"<?", declaration) >= 0:  # processing instructions
        return None
    starts = [m.start() for m in _START.finditer(xml, declaration)]
    if len(starts) != devices or not starts:
        return None
    starts.append(len(xml))
    keys = [xml[a:b] for a, b in itertools.pairwise(starts)]
    head = xml[: starts[0]]
    last_head, last = _LAST.get(site, (b"", {}))
    return Replays(head, keys, last if last_head == head else {}, {})


def finish(site: str, replays: Replays) -> None:
    """Keep this poll's devices for the next poll of ``site`` (after a complete list
    only: a list that failed keeps the last one's)."""
    if site not in _LAST and len(_LAST) >= _MAX_SITES:
        _LAST.clear()
    _LAST[site] = (replays.head, replays.now)


def capture(info: DeviceInfo | None, member_id: str | None, device_id: str, time: datetime,
            readings: list[Reading], problems: list[ParseError]) -> Replay:  # fmt: skip
    """The Replay of a device just read, whose readings and problems are ``readings`` and
    ``problems``, at poll ``time``."""
    return Replay(
        info,
        member_id,
        device_id,
        tuple((r, r.time is time) for r in readings),
        tuple((_message(p), p.part) for p in problems),
    )


def replay(entry: Replay, time: datetime, readings: list[Reading],
           problems: list[ParseError]) -> None:  # fmt: skip
    """Append what ``entry`` gave to ``readings`` and ``problems``, at poll ``time``."""
    new, cls = tuple.__new__, Reading
    for r, at_poll in entry.readings:
        if at_poll:
            readings.append(new(cls, (r[0], r[1], time, r[3], r[4], r[5], r[6], r[7], r[8])))
        else:
            readings.append(r)  # immutable, and the same as read again
    for message, part in entry.problems:
        problems.append(ParseError(message, part=part))


def _message(problem: ParseError) -> str:
    """The message a problem was made with (without the part ParseError appends)."""
    text = str(problem)
    suffix = f" (at {problem.part})" if problem.part else ""
    return text[: len(text) - len(suffix)] if suffix and text.endswith(suffix) else text
