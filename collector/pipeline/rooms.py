"""One room model across vendors: the ``room`` tag, the same whichever system measured it.

Thinknx objects and Overkiz places bring their rooms; FRITZ! devices have none (the AHA
interface knows no rooms), so ``[fritzbox.rooms]`` maps a device, by AIN or by name, to one.
Every source section may also carry ``room_aliases``: the site's own room names mapped to
the house's, so that "Soggiorno" (Thinknx), "Salon" (Overkiz) and "Wohnzimmer" (FRITZ!)
all become "Living room".

The mapping is applied in one place, where readings leave a source on their way to the
spool (``collector.pipeline.app``), so polls, device statistics and backfilled history agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from collector.config import Config
from collector.model import Reading

#: An AIN as printed on a FRITZ! device: digits in groups, a unit number after a dash.
_AIN = re.compile(r"^\s*\d[\d ]*(?:-\d+)?\s*$")


def ain_key(text: str) -> str:
    """An AIN as the ``device_id`` tag holds it: without spaces ("08761 0000434" too)."""
    return "".join(text.split())


@dataclass(frozen=True, slots=True)
class SiteRooms:
    """The room rules of one site (one source section)."""

    #: device_id (AIN without spaces) or device name -> room (FRITZ! only).
    by_device: Mapping[str, str] = field(default_factory=dict)
    #: the site's room name -> the house's room name.
    aliases: Mapping[str, str] = field(default_factory=dict)

    def room(self, reading: Reading) -> str | None:
        """The room ``reading`` belongs to after mapping and aliases (None: no room)."""
        room = self.by_device.get(reading.device_id) or self.by_device.get(reading.device)
        if room is None:
            room = reading.tag("room")
        if room is None:
            return None
        return self.aliases.get(room, room)


_make = Reading._make
#: Entries of the tag cache of a RoomMap before it starts afresh.
_CACHE_MAX = 100_000
_Key = tuple[str, str, str, str, tuple[tuple[str, str], ...]]


class RoomMap:
    """The room rules of every site, keyed by (source kind, site).

    The outcome for a series (its tags after the rules) is remembered: the readings of one
    device keep arriving with the same tags, poll after poll.
    """

    __slots__ = ("_cache", "sites")

    def __init__(self, sites: Mapping[tuple[str, str], SiteRooms] | None = None) -> None:
        self.sites: Mapping[tuple[str, str], SiteRooms] = dict(sites or {})
        #: (source, site, device_id, device, tags) -> new tags, or None: unchanged.
        self._cache: dict[_Key, tuple[tuple[str, str], ...] | None] = {}

    def __bool__(self) -> bool:
        return bool(self.sites)

    def _tags(self, reading: Reading) -> tuple[tuple[str, str], ...] | None:
        rules = self.sites.get((reading.source, reading.site))
        if rules is None:
            return None
        room = rules.room(reading)
        if room == reading.tag("room"):
            return None
        return with_room(reading, room).tags

    def apply(self, readings: Sequence[Reading]) -> Sequence[Reading]:
        """``readings`` with their ``room`` tag set by the rules of their site.

        Readings whose room stays as it is are passed through untouched (the same objects),
        and so is the whole sequence when no reading changed.
        """
        if not self.sites:
            return readings
        cache = self._cache
        out: list[Reading] | None = None
        for i, r in enumerate(readings):
            key = (r.source, r.site, r.device_id, r.device, r.tags)
            try:
                tags = cache[key]
            except KeyError:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                tags = cache[key] = self._tags(r)
            if tags is None:
                if out is not None:
                    out.append(r)
                continue
            if out is None:
                out = list(readings[:i])
            # the fields as they are (already checked when the reading was made), new tags
            out.append(_make((r[0], r[1], r[2], r[3], r[4], r[5], r[6], tags, r[8])))
        return readings if out is None else out


def with_room(reading: Reading, room: str | None) -> Reading:
    """``reading`` with its ``room`` tag replaced (``None``: removed)."""
    tags = [(k, v) for k, v in reading.tags if k != "room"]
    if room:
        tags.append(("room", room))
        tags.sort()
    return reading._replace(tags=tuple(tags))


def room_map(config: Config) -> RoomMap:
    """The room rules of every configured site."""
    sites: dict[tuple[str, str], SiteRooms] = {}
    sections: Iterable[tuple[str, object]] = (
        *(("fritzbox", s) for s in config.fritzbox),
        *(("thinknx", s) for s in config.thinknx),
        *(("overkiz", s) for s in config.overkiz),
    )
    for kind, section in sections:
        rooms: dict[str, str] = getattr(section, "rooms", {})
        # an AIN is matched without its spaces; a name as written
        by_device = {ain_key(k) if _AIN.match(k) else k: v for k, v in rooms.items()}
        aliases = dict(getattr(section, "room_aliases", {}))
        if by_device or aliases:
            sites[(kind, str(getattr(section, "name", "")))] = SiteRooms(by_device, aliases)
    return RoomMap(sites)
