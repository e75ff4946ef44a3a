"""Device-side history of the Overkiz cloud: one series per state of a device.

``GET /setup/devices/{deviceURL}/states/{name}/history/{from}/{to}`` (spec: "History values":
"Max history query span is limited to 3 days if limit parameter is not set"; from/to in epoch
ms). The answer is ``{"historyValues": [{"value", "when", ...}], "deviceUnit": "<measured
value type>"}``; every value is stamped with its own ``when``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.errors import ParseError
from collector.normalise import number
from collector.sources.overkiz.client import device_segment

WINDOW = timedelta(days=3)
#: 10000-01-01: later times cannot be a datetime.
MAX_MS = 253_402_300_800_000


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    unit: str | None  # the measured value type the server names, if any
    values: tuple[tuple[int, float], ...]  # (epoch ms, value)


def windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive windows of at most 3 days covering [start, end)."""
    low = start
    while low < end:
        high = min(low + WINDOW, end)
        yield low, high
        low = high


def window_count(start: datetime, end: datetime) -> int:
    if start >= end:
        return 0
    return -(-(end - start) // WINDOW)


def history_path(device_url: str, state: str, low: datetime, high: datetime) -> str:
    return (
        f"/setup/devices/{device_segment(device_url)}/states/{state}/history/"
        f"{_ms(low)}/{_ms(high)}"
    )


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


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
    for index, item in enumerate(raw):
        part = f"historyValues[{index}]"
        if not isinstance(item, dict):
            raise ParseError("history value is not an object", part=part)
        when = item.get("when")
        if not isinstance(when, int) or isinstance(when, bool) or not 0 <= when < MAX_MS:
            raise ParseError("history value without a time", part=f"{part}.when")
        try:
            value = number(item.get("value"))
        except ValueError as exc:
            raise ParseError(str(exc), part=f"{part}.value") from exc
        if value is not None:
            out.append((when, value))
    unit = doc.get("deviceUnit")
    return HistoryAnswer(unit if isinstance(unit, str) and unit else None, tuple(out))


def when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
