"""``energy_period_wh`` of the Overkiz meters: per local day and month (periods.py).

The backfill reads each meter's aggregated daily and monthly history once for the whole
range (no span limit), and takes a finished period's value from it when the server's period
is ours (it starts at a local midnight of the site's zone). The running day and month, and
any period the aggregate does not give in our zone, come from "Devices growing index
variations": one request per slot for all meters. The live job asks only for the running
day and month, so their points are written again, with the same timestamps, as they grow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from collector.model import Reading
from collector.sources.overkiz.client import OverkizClient
from collector.sources.overkiz.history import Window, history_path, ms, parse_history
from collector.sources.overkiz.parse import Device
from collector.sources.overkiz.periods import (
    GROWING_PATH,
    Period,
    Slot,
    growing_body,
    parse_growing,
    slots,
)
from collector.sources.overkiz.readings import METER_TOTAL, period_reading
from collector.sources.overkiz.units import state_unit, unit_text


@dataclass(frozen=True, slots=True)
class Meter:
    """One meter total and one period kind: a backfill series of its own."""

    device: Device
    period: Period

    @property
    def key(self) -> str:
        return f"{self.device.url} {METER_TOTAL} {self.period.tag}"

    @property
    def unit(self) -> str | None:
        return state_unit(METER_TOTAL, self.device.attributes, schema_unit="Wh")


def meters(devices: Sequence[Device]) -> list[Meter]:
    """Every device with a meter total, once per period kind."""
    return [
        Meter(d, p)
        for d in devices
        if any(s.name == METER_TOTAL for s in d.states)
        for p in Period
    ]


async def period_readings(
    client: OverkizClient,
    wanted: Sequence[tuple[Meter, datetime]],
    now: datetime,
    tz: tzinfo,
    *,
    site: str,
    aggregated: bool,
) -> dict[str, list[Reading]]:
    """Readings per meter key for the periods from each meter's start to ``now``.

    With ``aggregated`` the finished periods come from the daily/monthly history where it
    has them; everything else (always the running periods) from growing index variations.
    """
    out: dict[str, list[Reading]] = {m.key: [] for m, _ in wanted}
    missing: dict[tuple[datetime, datetime], list[Meter]] = defaultdict(list)
    for meter, start in wanted:
        periods = slots(start, now, meter.period, tz)
        if aggregated and periods and periods[0].end <= now:  # a finished period
            known = await _aggregated(client, meter, periods[0], now)
            for slot in periods:
                value = known.get(ms(slot.begin)) if slot.end <= now else None
                if value is None:
                    missing[(slot.begin, min(slot.end, now))].append(meter)
                    continue
                amount, unit = value
                reading = period_reading(meter.device, meter.period.tag, slot.begin, amount,
                                         unit, site=site)
                if reading is not None:
                    out[meter.key].append(reading)
        else:
            for slot in periods:
                missing[(slot.begin, min(slot.end, now))].append(meter)
    for (begin, end), asked in sorted(missing.items(), key=lambda item: item[0]):
        body = growing_body([(m.device.url, METER_TOTAL) for m in asked], begin, end)
        deltas = parse_growing(await client.request("POST", GROWING_PATH, json_body=body))
        for meter in asked:
            delta = deltas.get((meter.device.url, METER_TOTAL))
            if delta is None:
                continue
            reading = period_reading(meter.device, meter.period.tag, begin, delta, meter.unit,
                                     site=site)
            if reading is not None:
                out[meter.key].append(reading)
    return out


async def _aggregated(
    client: OverkizClient, meter: Meter, first: Slot, now: datetime
) -> dict[int, tuple[float, str | None]]:
    """The server's period values by their start (epoch ms), with the unit of each."""
    window = Window(ms(first.begin), ms(now))
    path = history_path(meter.device.url, METER_TOTAL, window, meter.period.path)
    answer = parse_history(await client.request("GET", path))
    unit = unit_text(answer.unit) if answer.unit is not None else meter.unit
    return {when_ms: (value, unit) for when_ms, value in answer.values}
