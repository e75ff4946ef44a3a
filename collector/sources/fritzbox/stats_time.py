"""The times of FRITZ! device statistics (AVM "AHA-HTTP-Interface" 1.2.2
``getbasicdevicestats``): sample times counted back from the newest, and the local days and
months of energy totals. Read through :mod:`collector.sources.fritzbox.normalise`, which
offers every conversion of AHA values in one place.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, tzinfo

#: Latest second InfluxDB can store (2262-04-11T23:47:16Z: 2**63 - 1 ns): a device time
#: after it is refused where it is read, as the line-protocol encoder would refuse it.
MAX_EPOCH = 9_223_372_036


class EnergyPeriod(enum.Enum):
    """The calendar period of an energy statistics series (value of the ``period`` tag)."""

    DAY = "day"
    MONTH = "month"


_DAY_S = 86_400
_ORDINAL_1970 = date(1970, 1, 1).toordinal()


def energy_period(grid: int) -> EnergyPeriod | None:
    """The period of an energy <stats> block from its grid: 86400 s is one day; the box
    writes one month as 2678400 s (31 days), so 28..31 days is a month. Other grids are
    not documented: None (no points)."""
    if grid == _DAY_S:
        return EnergyPeriod.DAY
    if 28 * _DAY_S <= grid <= 31 * _DAY_S:
        return EnergyPeriod.MONTH
    return None


def sample_epoch(newest: int, grid: int, index: int) -> int:
    """1.2.2: values are newest first, ``grid`` seconds apart; the i-th is at
    newest - i * grid. Raises ValueError before 1970."""
    t = newest - index * grid
    if t < 0:
        raise ValueError(f"statistics reach before 1970 (value {index})")
    return t


def floor_epoch(t: datetime, grid: int) -> int:
    """``t`` in epoch seconds floored to the grid: the newest sample time when a <stats>
    block has no datatime attribute."""
    epoch = int(t.timestamp())
    return epoch - epoch % grid


def period_start(newest: int, period: EnergyPeriod, index: int, tz: tzinfo) -> datetime:
    """UTC start of the index-th energy bucket, counted back from the newest one.

    The newest bucket is the local calendar day or month (in ``tz``, the box's time zone)
    that contains ``newest``: it is the current, still growing day or month. The real
    capture shows it: the month total equals the sum of the day values of that month
    including the day of ``datatime``.
    """
    if not 0 <= newest <= MAX_EPOCH:
        raise ValueError(f"timestamp out of range: {newest}")
    local = datetime.fromtimestamp(newest, tz)
    if period is EnergyPeriod.DAY:
        ordinal = local.toordinal() - index
        day = date.fromordinal(ordinal) if ordinal >= _ORDINAL_1970 else None
    else:
        year, month0 = divmod(local.year * 12 + local.month - 1 - index, 12)
        day = date(year, month0 + 1, 1) if year >= 1970 else None
    if day is None:
        raise ValueError(f"statistics reach before 1970 (value {index})")
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    if start.timestamp() < 0:
        raise ValueError(f"statistics reach before 1970 (value {index})")
    return start
