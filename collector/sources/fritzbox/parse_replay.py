"""What a device of the last poll gave, handed out again while its element is unchanged.

Between two polls most devices of a list say exactly the same (a thermostat's setpoints,
a window contact, a plug that is off): about two in three of the simulated house's, a
minute apart. A device whose bytes in the answer are the same as in the last poll of the
same site, in a document that starts the same way (declaration and root element, so the
same encoding and namespaces), gives the same device, readings and problems, except that
its readings carry the new poll's time (a ``model.Again``); it is neither parsed nor read
again. Any change of the element, its attributes or anything inside it makes it a new
entry, with one exception: a device whose bytes differ from the last poll's only in the
digits of its power meter (``<power>``, ``<energy>``, ``<voltage>``: what changes from
minute to minute in most houses) gives what it gave then with those values read anew, at
the places its readings held them (``Meter``). Only the devices of the last poll of each
site are kept.

The answer is cut at the start tags of its devices and groups, and only the devices that
changed are parsed: the document's start, the changed devices and its end, as one document
(the whole answer when nothing is known of the site yet). The cut is trusted only when it is
certain: no comment, CDATA section, processing instruction or document type anywhere (whose
contents could look like a start tag), and in the parsed document as many such start tags
as device and group elements, all children of the root. Then every piece is one whole
device element and the text after it, and the answer is well-formed as the pieces are: the
unchanged ones were checked when they were new. Otherwise the whole answer is parsed and
nothing is replayed. No I/O here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, cast

from collector.errors import ParseError
from collector.model import Again, Reading
from collector.sources.fritzbox import normalise as nz
from collector.sources.fritzbox.parse_stats import Element, load_document
from collector.sources.fritzbox.parse_tables import DeviceInfo

#: Sites whose last poll is kept (one per configured box; more is not expected).
_MAX_SITES = 64


class Replay(NamedTuple):
    """What one device element gave."""

    info: DeviceInfo | None
    member_id: str | None  # see _Static
    device_id: str
    members: str | None  # a group's <groupinfo><members> text
    #: each reading, and whether its time is the poll's (else its own, e.g. a button press)
    readings: tuple[tuple[Reading, bool], ...]
    problems: tuple[tuple[str, str | None], ...]  # (message, part)
    #: what the users of this entry made of it, keyed by themselves (see model.Again)
    memo: dict[object, object]
    #: the device's bytes without its meter digits, and where its readings hold them
    meter: tuple[bytes, Meter] | None = None


class Meter(NamedTuple):
    """Where a device's readings hold its power meter's values, one per meter element in
    document order: the position in ``Replay.readings`` and the conversion of the digits."""

    tags: tuple[bytes, ...]
    positions: tuple[int, ...]
    convert: tuple[Callable[[int], float], ...]


class Cut(NamedTuple):
    """One answer cut into its devices, with the devices of the last poll of its site."""

    head: bytes  # the document up to its first device
    keys: list[bytes]  # each device's or group's bytes and the text after it, in order
    tail: bytes  # the root's end tag and what follows
    last: dict[bytes, Replay]
    now: dict[bytes, Replay]
    #: the last poll's devices with a meter, by their bytes without the meter digits
    metered: dict[bytes, Replay]
    #: position -> the entry of a device whose meter alone changed since the last poll,
    #: with the new values (see Meter)
    remetered: dict[int, Replay]

    def changed(self) -> list[int]:
        """The positions of the devices not in the last poll (those whose meter alone
        changed are read here, into ``remetered``)."""
        last, metered = self.last, self.metered
        out = []
        for i, key in enumerate(self.keys):
            if key in last:
                continue
            if metered:
                found = _remeter(key, metered)
                if found is not None:
                    self.remetered[i] = found
                    continue
            out.append(i)
        return out


#: site -> the start and the devices of its last poll
_LAST: dict[str, tuple[bytes, dict[bytes, Replay]]] = {}
#: the elements of a power meter (1.2.1 <powermeter>), plain digits
_METER = re.compile(rb"<(power|energy|voltage)>(\d{1,%d})</\1>" % nz.MAX_DIGITS)
#: meter element -> (measurement, conversion), as the parser reads them
_METER_READS: dict[bytes, tuple[str, Callable[[int], float]]] = {
    b"power": ("power_w", nz.watts_from_milliwatts),
    b"energy": ("energy_wh", nz.watt_hours),
    b"voltage": ("voltage_v", nz.volts_from_millivolts),
}
#: a device or group start tag (the root's children; <devicelist>, <groupinfo> do not match)
_START = re.compile(rb"<(?:device|group)[ \t\r\n/>]")
_END = b"</devicelist"
#: the end of a device list: the root's end tag, and nothing but white space after it
_CLOSE = re.compile(rb"</devicelist[ \t\r\n]*>[ \t\r\n]*")
#: the root of a list with no device to parse
_NO_DEVICES = load_document(b"<devicelist/>", "devicelist")


def load(site: str, xml: bytes) -> tuple[Element, Cut | None]:
    """The root of what is parsed of ``xml`` and the answer's cut. With a cut the root
    holds the devices not in ``cut.last``, in order; without one (None) nothing is
    replayed and the root is the whole answer's."""
    cut = _cut(site, xml)
    if cut is not None:
        changed = cut.changed()
        if not changed and _CLOSE.fullmatch(cut.tail):
            # Nothing to parse: the head is the last poll's, every device too (or its meter
            # alone changed), and the document ends as it must.
            return _NO_DEVICES, cut
        if len(changed) == len(cut.keys):
            doc = xml  # the same bytes: head, every device, tail
        else:
            doc = cut.head + b"".join(cut.keys[i] for i in changed) + cut.tail
        try:
            root = load_document(doc, "devicelist")
        except ParseError:
            root = None  # the whole answer says what is wrong with it, below
        if root is not None and _certain(doc, len(cut.head), root, len(changed)):
            return root, cut
    root = load_document(xml, "devicelist")
    return root, None


def _cut(site: str, xml: bytes) -> Cut | None:
    declaration = xml.find(b"?>") + 2 if xml.startswith((b"<?xml", b"\xef\xbb\xbf<?xml")) else 0
    starts = [m.start() for m in _START.finditer(xml, declaration)]
    end = xml.rfind(_END)
    if not starts or end < starts[-1]:
        return None
    keys = [xml[a:b] for a, b in itertools.pairwise([*starts, end])]
    head, tail = xml[: starts[0]], xml[end:]
    last_head, last = _LAST.get(site, (b"", {}))
    if last_head != head:
        last = {}
    # No comment, CDATA section, document type or processing instruction may be anywhere
    # (their text could look like a start tag). The head and the devices of the last poll
    # are the bytes of a document that had none; only the rest is searched. A piece starts
    # with "<device" or "<group", so none of these can begin across two pieces.
    if _hidden(tail) or (not last and _hidden(head[declaration:])):
        return None
    if any(_hidden(key) for key in keys if key not in last):
        return None
    metered = {e.meter[0]: e for e in last.values() if e.meter is not None}
    return Cut(head, keys, tail, last, {}, metered, {})


def _hidden(text: bytes) -> bool:
    """Whether ``text`` holds a comment, CDATA section, document type or processing
    instruction (or the start of one)."""
    return b"<!" in text or b"<?" in text


def _certain(doc: bytes, body: int, root: Element, devices: int) -> bool:
    """Whether the start tags in ``doc`` after its head (``body`` bytes) are exactly the
    ``devices`` device and group children of ``root``, and no such element is below."""
    children = sum(1 for el in root if el.tag == "device" or el.tag == "group")  # noqa: PLR1714
    if children != devices:
        return False
    if sum(1 for _ in cast(Any, root).iter("device", "group")) != devices:
        return False
    return sum(1 for _ in _START.finditer(doc, body)) == devices


def forget() -> None:
    """Forget the last poll of every site (as after a restart)."""
    _LAST.clear()


def finish(site: str, cut: Cut) -> None:
    """Keep this poll's devices for the next poll of ``site`` (after a complete list
    only: a list that failed keeps the last one's)."""
    if site not in _LAST and len(_LAST) >= _MAX_SITES:
        _LAST.clear()
    _LAST[site] = (cut.head, cut.now)


def capture(key: bytes | None, info: DeviceInfo | None, member_id: str | None,
            device_id: str, members: str | None, time: datetime, readings: list[Reading],
            problems: list[ParseError]) -> Replay:  # fmt: skip
    """The Replay of a device just read from ``key`` (its bytes; None: unknown), whose
    readings and problems are ``readings`` and ``problems``, at poll ``time``."""
    template = tuple((r, r.time is time) for r in readings)
    return Replay(
        info,
        member_id,
        device_id,
        members,
        template,
        tuple((_message(p), p.part) for p in problems),
        {},
        None if key is None else _meter(key, template),
    )


def _meter(key: bytes, template: tuple[tuple[Reading, bool], ...]) -> tuple[bytes, Meter] | None:
    """The device's bytes without its meter digits and where its readings (just read from
    ``key``) hold the meter's values; None when it has no meter or they cannot be told
    with certainty (each element once, read into one reading of its value at poll time)."""
    parts = _METER.split(key)
    if len(parts) == 1:
        return None
    tags = tuple(parts[1::3])
    if len(set(tags)) != len(tags):
        return None
    positions, convert = [], []
    for tag, digits in zip(tags, parts[2::3], strict=True):
        measurement, fn = _METER_READS[tag]
        found = [i for i, (r, at_poll) in enumerate(template)
                 if r.measurement == measurement and at_poll]  # fmt: skip
        if len(found) != 1 or template[found[0]][0].value != fn(int(digits)):
            return None
        positions.append(found[0])
        convert.append(fn)
    return _skeleton(parts), Meter(tags, tuple(positions), tuple(convert))


def _skeleton(parts: list[bytes]) -> bytes:
    """A device's bytes without its meter digits (``_METER.split`` of them): the text
    around the meter elements and their tags. NUL never occurs in XML."""
    return b"\0".join(parts[0::3]) + b"\0\0" + b",".join(parts[1::3])


def _remeter(key: bytes, metered: dict[bytes, Replay]) -> Replay | None:
    """The entry of a device of the last poll whose bytes differed from ``key`` only in
    its meter digits, with the new values in its readings (at their old time); None when
    there is none. It keeps the old entry's memo, whose text of the other readings still
    holds (see ``again``)."""
    parts = _METER.split(key)
    if len(parts) == 1:
        return None
    entry = metered.get(_skeleton(parts))
    if entry is None or entry.meter is None:
        return None
    meter = entry.meter[1]
    readings = list(entry.readings)
    new = tuple.__new__
    for i, fn, digits in zip(meter.positions, meter.convert, parts[2::3], strict=True):
        r, at_poll = readings[i]
        readings[i] = (new(Reading, (r[0], fn(int(digits)), r[2], r[3], r[4], r[5], r[6],
                                     r[7], r[8])), at_poll)  # fmt: skip
    # Replay._replace, without its cost: the readings are the fifth field
    return new(Replay, (*entry[:4], tuple(readings), *entry[5:]))


def again(entry: Replay, time: datetime, problems: list[ParseError]) -> Again | None:
    """What ``entry`` gave, at poll ``time``: its readings (None: it had none); its
    problems are appended to ``problems``. The text of a meter's readings is made anew
    every time (``Again.fresh``): the memo is shared by the entries of one device while
    only its meter changes."""
    for message, part in entry.problems:
        problems.append(ParseError(message, part=part))
    if not entry.readings:
        return None
    fresh = () if entry.meter is None else entry.meter[1].positions
    return Again(entry.readings, time, entry.memo, fresh)


def _message(problem: ParseError) -> str:
    """The message a problem was made with (without the part ParseError appends)."""
    text = str(problem)
    suffix = f" (at {problem.part})" if problem.part else ""
    return text[: len(text) - len(suffix)] if suffix and text.endswith(suffix) else text
