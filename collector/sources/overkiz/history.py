"""Device-side history of the Overkiz cloud: one series per state of a device.

``GET /setup/devices/{deviceURL}/states/{name}/history/{from}/{to}`` (spec: "History values":
from/to in epoch ms, the period's lower and higher bound, both included; "Max history query
span is limited to 3 days if limit parameter is not set"; request parameter ``limit``:
"Maximum number of values to retrieve"). The answer is ``{"historyValues": [{"value",
"when", ...}], "deviceUnit": "<measured value type>"}``; every value is stamped with its own
``when``.

A series is read with ``limit`` set, so one request covers any span: a month of hourly
values is one request instead of ten 3-day windows. An answer that holds ``LIMIT`` values
may have more after them: the next page starts 1 ms after the last ``when``. Two things the
spec does not say are guesses here (docs/overkiz.md): that the values come oldest first, and
that the server gives as many as ``LIMIT`` asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.errors import ParseError
from collector.normalise import number
from collector.sources.base import HistorySink
from collector.sources.overkiz.client import OverkizClient, device_segment
from collector.sources.overkiz.parse import Device, State
from collector.sources.overkiz.readings import reading

#: Values asked per history request.
LIMIT = 1000
#: 10000-01-01: later times cannot be a datetime.
MAX_MS = 253_402_300_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    unit: str | None  # the measured value type the server names, if any
    values: tuple[tuple[int, float], ...]  # (epoch ms, value)
    #: Entries in the answer, numbers or not, and the latest ``when`` among them: an answer
    #: of ``LIMIT`` entries is followed by the page after ``last_ms``.
    count: int = 0
    last_ms: int | None = None


def ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MS


def history_path(device_url: str, state: str, from_ms: int, to_ms: int) -> str:
    """One page of a state's history: ``LIMIT`` values at most, from ``from_ms`` on."""
    return (
        f"/setup/devices/{device_segment(device_url)}/states/{state}/history/"
        f"{from_ms}/{to_ms}?limit={LIMIT}"
    )


def next_page(answer: HistoryAnswer, to_ms: int) -> int | None:
    """Where the page after ``answer`` starts, or None when the span is read to ``to_ms``."""
    if answer.count < LIMIT or answer.last_ms is None or answer.last_ms >= to_ms:
        return None
    return answer.last_ms + 1


def parse_history(doc: object) -> HistoryAnswer:
    """Read a history answer; a value that is no number is a ParseError naming its index."""
    if not isinstance(doc, dict):
        raise ParseError("history answer is not an object", part="history")
    raw = doc.get("historyValues")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ParseError("historyValues is not a list", part="historyValues")
    out: list[tuple[int, float]] = []
    last: int | None = None
    for index, item in enumerate(raw):
        part = f"historyValues[{index}]"
        if not isinstance(item, dict):
            raise ParseError("history value is not an object", part=part)
        when = item.get("when")
        if not isinstance(when, int) or isinstance(when, bool) or not 0 <= when < MAX_MS:
            raise ParseError("history value without a time", part=f"{part}.when")
        last = when if last is None else max(last, when)
        try:
            value = number(item.get("value"))
        except ValueError as exc:
            raise ParseError(str(exc), part=f"{part}.value") from exc
        if value is not None:
            out.append((when, value))
    unit = doc.get("deviceUnit")
    return HistoryAnswer(unit if isinstance(unit, str) and unit else None, tuple(out), len(raw),
                         last)


def when(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


async def read_series(client: OverkizClient, key: str, device: Device, state: str,
                      end: datetime, sink: HistorySink, *, site: str) -> None:
    """One state's history from the series' watermark to ``end``, page by page; each page
    is handed to ``sink`` (and its watermark moved) before the next is asked for."""
    low, high = ms(sink.start(key)), ms(end)
    while low <= high:
        answer = parse_history(
            await client.request("GET", history_path(device.url, state, low, high)))
        points = [
            r
            for at, value in answer.values
            if (r := reading(device, State(state, value), when(at), site=site,
                             answer_unit=answer.unit))
        ]
        after = next_page(answer, high)
        sink.put(key, points, until=when(high + 1 if after is None else after))
        if after is None:
            return
        low = after
