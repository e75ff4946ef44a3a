"""``energy_period_wh`` of the Overkiz meters: per local day and month (periods.py).

Every period from each meter's start to now comes from "Devices growing index variations",
as many slots per request as ``BATCH`` allows: the running day and month of every meter in
one request for the live job, a month of days and months of every meter in a request or two
for a backfill. The running periods' points are written again, with the same timestamps,
as they grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from collector.model import Reading
from collector.sources.overkiz.client import OverkizClient
from collector.sources.overkiz.parse import Device
from collector.sources.overkiz.periods import (
    GROWING_PATH,
    Ask,
    Period,
    growing_by_name,
    parse_growing,
    slots,
)
from collector.sources.overkiz.readings import METER_TOTAL, period_reading
from collector.sources.overkiz.units import state_unit

#: Slots per growing index request.
BATCH = 200


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
        return state_unit(METER_TOTAL, self.device.attributes, schema_unit="Wh", default="Wh")


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
) -> dict[str, list[Reading]]:
    """Readings per meter key for the periods from each meter's start to ``now``."""
    out: dict[str, list[Reading]] = {m.key: [] for m, _ in wanted}
    asks: list[tuple[Meter, Ask]] = [
        (meter, Ask(meter.device.url, METER_TOTAL, slot.begin, min(slot.end, now)))
        for meter, start in wanted
        for slot in slots(start, now, meter.period, tz)
    ]
    for first in range(0, len(asks), BATCH):
        batch = asks[first:first + BATCH]
        for (meter, ask), delta in zip(batch, await _deltas(client, [a for _, a in batch]),
                                       strict=True):
            if delta is None:
                continue
            reading = period_reading(meter.device, meter.period.tag, ask.begin, delta,
                                     meter.unit, site=site)
            if reading is not None:
                out[meter.key].append(reading)
    return out


async def _deltas(client: OverkizClient, asks: list[Ask]) -> list[float | None]:
    """The delta of every ask: in one request, or (an answer that cannot be matched by
    position) again in requests that hold each meter once, matched by name."""
    answer = await client.request("POST", GROWING_PATH, json_body=[a.json() for a in asks])
    deltas = parse_growing(answer, asks)
    if deltas is not None:
        return deltas
    found: dict[int, float | None] = {}
    pending = list(range(len(asks)))
    while pending:
        seen: set[tuple[str, str]] = set()
        now_asked: list[int] = []
        later: list[int] = []
        for index in pending:
            name = (asks[index].device_url, asks[index].state)
            (later if name in seen else now_asked).append(index)
            seen.add(name)
        answer = await client.request(
            "POST", GROWING_PATH, json_body=[asks[i].json() for i in now_asked]
        )
        by_name = growing_by_name(answer)
        for index in now_asked:
            found[index] = by_name.get((asks[index].device_url, asks[index].state))
        pending = later
    return [found[i] for i in range(len(asks))]

