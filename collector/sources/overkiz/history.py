"""Device-side history of the Overkiz cloud: one series per state of a device.

``GET /setup/devices/{deviceURL}/states/{name}/history/{from}/{to}`` (spec: "History values":
"Max history query span is limited to 3 days if limit parameter is not set"; from/to in epoch
ms, the period's lower and higher bound). The answer is ``{"historyValues": [{"value",
"when", ...}], "deviceUnit": "<measured value type>"}``; every value is stamped with its own
``when``. The daily and monthly forms ("Daily history values", "Monthly history values")
answer the same shape with one value per period, and document no span limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.errors import ParseError
from collector.normalise import number
from collector.sources.overkiz.client import device_segment

WINDOW_MS = 3 * 86_400_000
#: 10000-01-01: later times cannot be a datetime.
MAX_MS = 253_402_300_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    unit: str | None  # the measured value type the server names, if any
    values: tuple[tuple[int, float], ...]  # (epoch ms, value)


@dataclass(frozen=True, slots=True)
class Window:
    """One history request: ``from`` and ``to`` in epoch ms, both bounds included (the spec
    calls them the period's lower and higher bound)."""

    from_ms: int
    to_ms: int

    @property
    def until(self) -> datetime:
        """The first instant after this window: where the next window (or run) starts."""
        return when(self.to_ms + 1)


def ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MS


def windows(start: datetime, end: datetime) -> list[Window]:
    """Request windows covering [start, end] exactly, each spanning at most 3 days.

    Both bounds of a request are inclusive, so the next window starts 1 ms after the
    previous one ends: a value exactly on a boundary is read once, and none is skipped.
    """
    low, high = ms(start), ms(end)
    out: list[Window] = []
    while low <= high:
        top = min(low + WINDOW_MS, high)
        out.append(Window(low, top))
        low = top + 1
    return out


def window_count(start: datetime, end: datetime) -> int:
    return len(windows(start, end))


def history_path(device_url: str, state: str, window: Window, kind: str = "") -> str:
    """The raw history path, or with ``kind`` "daily"/"monthly" the aggregated one."""
    middle = f"{kind}/" if kind else ""
    return (
        f"/setup/devices/{device_segment(device_url)}/states/{state}/history/{middle}"
        f"{window.from_ms}/{window.to_ms}"
    )


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


def when(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)
