"""Uptime texts of ``system/serverStatus`` -> seconds.

Integration Kit, "System controller / Get server status": ``process_uptime`` and
``server_uptime`` come as "X days X hours X min"; the Italian document writes
"X giorni X ore X min". Servers write the singular for one ("1 day", "1 hour", "1 giorno",
"1 ora"); a part that is zero may be left out. The resolution is one minute.
"""

from __future__ import annotations

import re
from typing import Final

from collector.errors import ParseError

#: Unit word (casefolded) -> seconds.
_UNITS: Final[dict[str, int]] = {
    "day": 86400, "days": 86400, "giorno": 86400, "giorni": 86400,
    "hour": 3600, "hours": 3600, "ora": 3600, "ore": 3600,
    "min": 60, "mins": 60, "minute": 60, "minutes": 60, "minuto": 60, "minuti": 60,
}
_PART = re.compile(r"(\d{1,9})\s*([^\W\d_]+)", re.UNICODE)


def parse_uptime(text: object, *, field: str = "uptime") -> float:
    """"2 days 1 hour 3 min" / "2 giorni 1 ora 3 min" -> 176580.0 seconds.

    Anything else (no parts, an unknown word, a unit twice, stray characters) raises
    ``ParseError`` naming ``field``.
    """
    if not isinstance(text, str):
        raise ParseError(f"{field} is not a text: {type(text).__name__}", part=field)
    rest = text.strip()
    total = 0
    seen: set[int] = set()
    pos = 0
    for match in _PART.finditer(rest):
        if rest[pos:match.start()].strip(" ,"):
            break
        seconds = _UNITS.get(match.group(2).casefold())
        if seconds is None or seconds in seen:
            raise ParseError(f"{field}: unreadable uptime {text[:60]!r}", part=field)
        seen.add(seconds)
        total += int(match.group(1)) * seconds
        pos = match.end()
    if not seen or rest[pos:].strip(" ,"):
        raise ParseError(f"{field}: unreadable uptime {text[:60]!r}", part=field)
    return float(total)
