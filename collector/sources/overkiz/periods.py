"""Energy per local day and month (``energy_period_wh``) of Overkiz meters: pure helpers.

"Devices growing index variations" (``POST /setup/devices/states/growingIndexes``, "Get
growing indexes values variations on a given time slot") takes a list of
``{"deviceUrl", "stateName", "from", "to"}`` (epoch ms) and answers a list of
``{"deviceUrl", "stateName", "delta"}``: what a growing index (a cumulative meter) counted
in each slot. One request carries many slots. The answer names no slot, so its entries are
matched to the request's by position; that the server keeps the request's order is a guess
(the spec's example has one entry each way), checked on every answer: an answer whose
entries do not name the asked meters in the asked order is not read by position
(``parse_growing`` gives None) and the caller asks again one slot per meter at a time.

The daily and monthly history aggregates are not used for the period totals: the spec does
not say that their ``value`` is what the meter counted in the period.

Periods are calendar days and months of the site's time zone, stamped at their local start
in UTC, as the FRITZ!Box statistics are (collector/sources/fritzbox/normalise.py).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from collector.errors import ParseError
from collector.normalise import number
from collector.sources.overkiz.history import ms

GROWING_PATH = "/setup/devices/states/growingIndexes"


class Period(enum.Enum):
    """A calendar period: the ``period`` tag value and the aggregated history's path part."""

    DAY = ("day", "daily")
    MONTH = ("month", "monthly")

    def __init__(self, tag: str, path: str) -> None:
        self.tag = tag
        self.path = path


@dataclass(frozen=True, slots=True)
class Slot:
    """One local day or month: [begin, end) in UTC."""

    begin: datetime
    end: datetime


def period_start(moment: datetime, period: Period, tz: tzinfo) -> datetime:
    """UTC start of the local day or month (in ``tz``) that contains ``moment``."""
    local = moment.astimezone(tz)
    day = local.date().replace(day=1) if period is Period.MONTH else local.date()
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _next(begin: datetime, period: Period, tz: tzinfo) -> datetime:
    local = begin.astimezone(tz)
    if period is Period.DAY:
        day = local.date() + timedelta(days=1)
    else:
        year, month0 = divmod(local.year * 12 + local.month, 12)
        day = local.date().replace(year=year, month=month0 + 1, day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def slots(start: datetime, end: datetime, period: Period, tz: tzinfo) -> list[Slot]:
    """The local periods from the one containing ``start`` to the one containing ``end``."""
    out: list[Slot] = []
    begin = period_start(start, period, tz)
    while begin <= end:
        after = _next(begin, period, tz)
        out.append(Slot(begin, after))
        begin = after
    return out


@dataclass(frozen=True, slots=True)
class Ask:
    """One slot of one meter's growing index."""

    device_url: str
    state: str
    begin: datetime
    end: datetime

    def json(self) -> dict[str, Any]:
        return {"deviceUrl": self.device_url, "stateName": self.state,
                "from": ms(self.begin), "to": ms(self.end)}


def variation(item: object, part: str) -> tuple[str, str, float | None]:
    """(deviceUrl, stateName, delta) of one answer entry; None for a delta that is no number."""
    if not isinstance(item, dict):
        raise ParseError("growing index variation is not an object", part=part)
    url, state = item.get("deviceUrl"), item.get("stateName")
    if not isinstance(url, str) or not isinstance(state, str):
        raise ParseError("variation without deviceUrl or stateName", part=part)
    try:
        delta = number(item.get("delta"))
    except ValueError as exc:
        raise ParseError(str(exc), part=f"{part}.delta") from exc
    return url, state, delta if delta is not None and math.isfinite(delta) else None


def _entries(doc: object) -> list[tuple[str, str, float | None]]:
    if not isinstance(doc, list):
        raise ParseError("growing index answer is not a list", part="growingIndexes")
    return [variation(item, f"growingIndexes[{i}]") for i, item in enumerate(doc)]


def parse_growing(doc: object, asked: Sequence[Ask]) -> list[float | None] | None:
    """The delta of each asked slot, in the order asked (None for an entry without a number);
    None when the answer does not list the asked meters in the asked order."""
    entries = _entries(doc)
    if len(entries) != len(asked) or any(
        (url, state) != (ask.device_url, ask.state)
        for (url, state, _), ask in zip(entries, asked, strict=True)
    ):
        return None
    return [delta for _, _, delta in entries]


def growing_by_name(doc: object) -> dict[tuple[str, str], float | None]:
    """An answer's deltas by (deviceUrl, stateName), whatever their order (for a request
    that asks about each meter once)."""
    return {(url, state): delta for url, state, delta in _entries(doc)}
