"""Energy per local day and month (``energy_period_wh``) of Overkiz meters: pure helpers.

Two documented ways to get a meter's consumption per period (overkiz-enduser-rest-api.txt):

* "Daily history values" / "Monthly history values":
  ``GET /setup/devices/{deviceURL}/states/{name}/history/daily|monthly/{from}/{to}``, one
  value per period of the server, stamped at the period's start (``when``), in the shape of
  "History values" and without the 3-day span limit of the raw history. For a growing index
  (a cumulative meter) the value of a period is read as what the meter counted in it.
* "Devices growing index variations": ``POST /setup/devices/states/growingIndexes`` with a
  list of ``{"deviceUrl", "stateName", "from", "to"}`` (epoch ms) answers, per item,
  ``{"deviceUrl", "stateName", "delta"}``: the exact increase of the index in any slot. The
  answer names no slot, so one request asks about one slot (for any number of meters).

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


def growing_body(meters: Sequence[tuple[str, str]], begin: datetime, end: datetime) -> Any:
    """The request of "Devices growing index variations" for one slot and many meters."""
    return [
        {"deviceUrl": url, "stateName": state, "from": ms(begin), "to": ms(end)}
        for url, state in meters
    ]


def parse_growing(doc: object) -> dict[tuple[str, str], float]:
    """``(deviceUrl, stateName) -> delta``; an entry without a number is a ParseError."""
    if not isinstance(doc, list):
        raise ParseError("growing index answer is not a list", part="growingIndexes")
    out: dict[tuple[str, str], float] = {}
    for index, item in enumerate(doc):
        part = f"growingIndexes[{index}]"
        if not isinstance(item, dict):
            raise ParseError("growing index variation is not an object", part=part)
        url, state = item.get("deviceUrl"), item.get("stateName")
        if not isinstance(url, str) or not isinstance(state, str):
            raise ParseError("variation without deviceUrl or stateName", part=part)
        try:
            delta = number(item.get("delta"))
        except ValueError as exc:
            raise ParseError(str(exc), part=f"{part}.delta") from exc
        if delta is not None and math.isfinite(delta):
            out[(url, state)] = delta
    return out
