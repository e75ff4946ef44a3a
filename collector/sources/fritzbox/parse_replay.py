"""What a device of the last poll gave, handed out again while its element is unchanged.

Between two polls most devices of a list say exactly the same (a thermostat's setpoints,
a window contact, a plug that is off): about two in three of the simulated house's, a
minute apart. A device whose bytes in the answer are the same as in the last poll of the
same site, in a document that starts the same way (declaration and root element, so the
same encoding and namespaces), gives the same device, readings and problems, except that
its readings carry the new poll's time (a ``model.Again``); it is neither parsed nor read
again. Any change of the element, its attributes or anything inside it makes it a new
entry. Only the devices of the last poll of each site are kept.

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
from datetime import datetime
from typing import Any, NamedTuple, cast

from collector.errors import ParseError
from collector.model import Again, Reading
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
    memo: dict[object, object]  # see model.Again


class Cut(NamedTuple):
    """One answer cut into its devices, with the devices of the last poll of its site."""

    head: bytes  # the document up to its first device
    keys: list[bytes]  # each device's or group's bytes and the text after it, in order
    tail: bytes  # the root's end tag and what follows
    last: dict[bytes, Replay]
    now: dict[bytes, Replay]

    def changed(self) -> list[int]:
        """The positions of the devices not in the last poll."""
        last = self.last
        return [i for i, key in enumerate(self.keys) if key not in last]


#: site -> the start and the devices of its last poll
_LAST: dict[str, tuple[bytes, dict[bytes, Replay]]] = {}
#: a device or group start tag (the root's children; <devicelist>, <groupinfo> do not match)
_START = re.compile(rb"<(?:device|group)[ \t\r\n/>]")
_END = b"</devicelist"


def load(site: str, xml: bytes) -> tuple[Element, Cut | None]:
    """The root of what is parsed of ``xml`` and the answer's cut. With a cut the root
    holds the devices not in ``cut.last``, in order; without one (None) nothing is
    replayed and the root is the whole answer's."""
    cut = _cut(site, xml)
    if cut is not None:
        changed = cut.changed()
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
    if b"<!" in xml:  # comments, CDATA, a document type
        return None
    declaration = xml.find(b"?>") + 2 if xml.startswith((b"<?xml", b"\xef\xbb\xbf<?xml")) else 0
    if xml.find(b"<?", declaration) >= 0:  # processing instructions
        return None
    starts = [m.start() for m in _START.finditer(xml, declaration)]
    end = xml.rfind(_END)
    if not starts or end < starts[-1]:
        return None
    keys = [xml[a:b] for a, b in itertools.pairwise([*starts, end])]
    head = xml[: starts[0]]
    last_head, last = _LAST.get(site, (b"", {}))
    return Cut(head, keys, xml[end:], last if last_head == head else {}, {})


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


def capture(info: DeviceInfo | None, member_id: str | None, device_id: str,
            members: str | None, time: datetime, readings: list[Reading],
            problems: list[ParseError]) -> Replay:  # fmt: skip
    """The Replay of a device just read, whose readings and problems are ``readings`` and
    ``problems``, at poll ``time``."""
    return Replay(
        info,
        member_id,
        device_id,
        members,
        tuple((r, r.time is time) for r in readings),
        tuple((_message(p), p.part) for p in problems),
        {},
    )


def again(entry: Replay, time: datetime, problems: list[ParseError]) -> Again | None:
    """What ``entry`` gave, at poll ``time``: its readings (None: it had none); its
    problems are appended to ``problems``."""
    for message, part in entry.problems:
        problems.append(ParseError(message, part=part))
    return Again(entry.readings, time, entry.memo) if entry.readings else None


def _message(problem: ParseError) -> str:
    """The message a problem was made with (without the part ParseError appends)."""
    text = str(problem)
    suffix = f" (at {problem.part})" if problem.part else ""
    return text[: len(text) - len(suffix)] if suffix and text.endswith(suffix) else text
