"""Pure parser of ``getbasicdevicestats`` (AHA-HTTP-Interface 1.2.2), plus the root check
(``load_document``) and the element protocol both AHA parsers share; the hardened XML
loading itself is :mod:`.xmldoc`. No I/O here.

A statistics document holds, per quantity, one or more ``<stats count grid datatime>``
blocks of comma-separated values, newest first, ``grid`` seconds apart. ``datatime`` is
the epoch time of the newest value (newer firmware; not in the 2019 document); without it
the newest value is placed at the fetch time floored to the grid. Both rules give the
same timestamps when the same document is parsed again.

Energy blocks (grid 86400 s: days; 2678400 s: months) become ``energy_period_wh`` points
at the start of their local calendar day or month; the newest one is the current, still
growing day or month (see ``normalise.period_start``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Protocol, cast

from collector.errors import ParseError
from collector.model import Reading, Tags
from collector.sources.fritzbox import normalise as nz
from collector.sources.fritzbox.xmldoc import parse_xml

SOURCE = "fritzbox"

class Element(Protocol):
    """The part of the lxml element API the FRITZ! parsers use."""

    @property
    def tag(self) -> object: ...
    @property
    def text(self) -> str | None: ...
    @property
    def attrib(self) -> Mapping[str, str]: ...
    def get(self, key: str) -> str | None: ...
    def find(self, path: str) -> Element | None: ...
    def findall(self, path: str) -> list[Element]: ...
    def findtext(self, path: str) -> str | None: ...
    def __iter__(self) -> Iterator[Element]: ...


def load_document(xml: bytes, root_tag: str) -> Element:
    """Parse ``xml`` with the hardened loader and check its root element."""
    root = parse_xml(xml, root_tag)
    if root.tag != root_tag:
        raise ParseError(
            f"root element is <{str(root.tag)[:60]}>, expected <{root_tag}>", part=root_tag
        )
    return cast(Element, root)


def to_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime: pass an aware time")
    return t.astimezone(UTC)


#: element of <devicestats> -> (measurement, conversion of the raw integer)
_GAUGES: dict[str, tuple[str, Callable[[int], float]]] = {
    "temperature": ("temperature_c", nz.celsius_from_tenths),  # 1.2.2: 0,1 °C
    "humidity": ("humidity_pct", nz.percent),  # newer firmware: %
    "voltage": ("voltage_v", nz.volts_from_millivolts),  # 1.2.2: 0,001 V
    "power": ("power_w", nz.watts_from_centiwatts),  # 1.2.2: 0,01 W
}
_ENERGY = "energy"  # Wh per day or month (newer firmware)


def parse_devicestats(
    xml: bytes,
    *,
    site: str,
    device_id: str,
    device: str,
    fetched_at: datetime,
    tz: tzinfo,
    tags: Tags = (),
    problems: list[ParseError] | None = None,
) -> tuple[Reading, ...]:
    """Readings of one ``getbasicdevicestats`` answer, each at its own sample time.

    ``tags`` are extra tags for every point (model, room, scope). ``tz`` is the box's time
    zone, used for the calendar days and months of the energy series. A document that is
    not a statistics document raises ``ParseError``; "-" values produce no point.

    A bad value (not an integer, out of its range, at a time outside 1970..2262) costs only
    that value, and a bad ``<stats>`` attribute (grid, datatime, count) only its block: with
    a ``problems`` list, each is appended there as a ``ParseError`` naming the element and
    the rest is read; without one, the first raises.
    """
    root = load_document(xml, "devicestats")
    fetched = to_utc(fetched_at)
    out: list[Reading] = []
    report = _Report(problems)
    for quantity in root:
        name = quantity.tag
        if name == _ENERGY:
            for n, block in enumerate(quantity.findall("stats"), 1):
                part = f"devicestats/energy/stats[{n}]"
                try:
                    blocks = _energy_block(block, part, fetched=fetched, tz=tz, site=site,
                                           device_id=device_id, device=device, extra=tags,
                                           report=report)  # fmt: skip
                    out.extend(blocks)
                except ParseError as err:
                    report(err)
        elif isinstance(name, str) and name in _GAUGES:
            measurement, convert = _GAUGES[name]
            for n, block in enumerate(quantity.findall("stats"), 1):
                part = f"devicestats/{name}/stats[{n}]"
                try:
                    grid, newest = _block_time(block, part, fetched)
                    values = list(_values(block, part, report))
                except ParseError as err:
                    report(err)
                    continue
                for i, raw in values:
                    try:
                        value = convert(raw)
                        t = nz.sample_epoch(newest, grid, i)
                    except ValueError as err:
                        report(ParseError(str(err), part=f"{part}/value[{i}]"))
                        continue
                    out.append(
                        Reading(
                            measurement,
                            value,
                            datetime.fromtimestamp(t, UTC),
                            SOURCE,
                            site,
                            device_id,
                            device,
                            tags,
                        )
                    )
    return tuple(out)


class _Report:
    """Where a bad value or block goes: the caller's problems list, else raised."""

    __slots__ = ("problems",)

    def __init__(self, problems: list[ParseError] | None) -> None:
        self.problems = problems

    def __call__(self, err: ParseError) -> None:
        if self.problems is None:
            raise err
        self.problems.append(err)


def _energy_block(
    block: Element,
    part: str,
    *,
    fetched: datetime,
    tz: tzinfo,
    site: str,
    device_id: str,
    device: str,
    extra: Tags,
    report: _Report,
) -> list[Reading]:
    grid = _grid(block, part)
    period = nz.energy_period(grid)
    if period is None:
        nz.warn_once("energy statistics grid (skipped)", str(grid))
        return []
    datatime = _attr(block, "datatime", part)
    # The newest bucket is the day/month containing datatime; without it, the one
    # containing the fetch time (flooring to a 31-day grid would make no calendar sense).
    newest = datatime if datatime is not None else int(fetched.timestamp())
    tags = tuple(sorted((*extra, ("period", period.value))))
    out = []
    for i, raw in list(_values(block, part, report)):
        try:
            start = nz.period_start(newest, period, i, tz)
            value = nz.watt_hours(raw)
        except ValueError as err:
            report(ParseError(str(err), part=f"{part}/value[{i}]"))
            continue
        out.append(Reading("energy_period_wh", value, start, SOURCE, site, device_id, device,
                           tags))  # fmt: skip
    return out


def _block_time(block: Element, part: str, fetched: datetime) -> tuple[int, int]:
    """(grid, epoch of the newest value) of a <stats> block."""
    grid = _grid(block, part)
    datatime = _attr(block, "datatime", part)
    if datatime is None:
        return grid, nz.floor_epoch(fetched, grid)
    return grid, datatime


def _attr(block: Element, name: str, part: str, *, maximum: int = nz.MAX_EPOCH) -> int | None:
    """An optional non-negative integer attribute of a <stats> block."""
    try:
        value = nz.raw_int(block.get(name))
    except ValueError as err:
        raise ParseError(f"attribute {name}: {err}", part=f"{part}@{name}") from err
    if value is not None and not 0 <= value <= maximum:
        raise ParseError(f"attribute {name} out of range: {value}", part=f"{part}@{name}")
    return value


def _grid(block: Element, part: str) -> int:
    grid = _attr(block, "grid", part)
    if not grid:
        raise ParseError("attribute grid is missing or zero", part=f"{part}@grid")
    return grid


def _values(block: Element, part: str, report: _Report) -> Iterator[tuple[int, int]]:
    """(index, raw value) pairs, newest first; "-" (unknown) and empty items are skipped
    but keep their place in the grid, as does an item that is not an integer (reported).
    ``count`` is checked for type only: the document's own example ends the list with a
    comma, and the values present are what counts."""
    _attr(block, "count", part)
    text = block.text or ""
    for i, item in enumerate(text.split(",")):
        try:
            raw = nz.raw_int(item)
        except ValueError as err:
            report(ParseError(str(err), part=f"{part}/value[{i}]"))
            continue
        if raw is not None:
            yield i, raw
