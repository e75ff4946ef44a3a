"""``collector backfill``: load device-side history into the store.

Each source's ``history(since)`` is asked once (FRITZ!Box: one statistics round, the box
keeps about a day of 15-minute temperatures, an hour of 10-second power and two years of
monthly energy; Overkiz: the history endpoints, window by window). Readings go through the
spool like polled ones, so an interrupted backfill loses nothing, and the statistics'
own timestamps make a repeated backfill overwrite instead of doubling. A small state file
beside the spool remembers which sources finished for which ``--since``, so a rerun after
an interruption continues with the sources still missing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.app import App
from collector.errors import CollectorError, ConfigError, PartialFailure
from collector.spool import private_file

log = logging.getLogger(__name__)
_REL = re.compile(r"^(\d+)([mhdw])$")
_REL_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """'7d', '12h', '30m', '2w' (ago) or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    if m := _REL.match(text.strip()):
        return now - timedelta(seconds=int(m.group(1)) * _REL_S[m.group(2)])
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since: {text!r} is neither e.g. 7d/12h/2w nor an ISO date") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


@dataclass
class BackfillOutcome:
    source: str
    points: int = 0
    skipped: bool = False
    errors: list[str] = field(default_factory=list)


class _State:
    """Which sources have finished a backfill for a given --since (JSON, private file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, list[str]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def done(self, key: str, source: str) -> bool:
        return source in self.data.get(key, [])

    def mark(self, key: str, source: str) -> None:
        self.data.setdefault(key, []).append(source)
        private_file(self.path)
        self.path.write_text(json.dumps(self.data, indent=1), encoding="utf-8")


async def run_backfill(app: App, since: datetime, *, source_name: str | None = None,
                       restart: bool = False) -> list[BackfillOutcome]:
    sources = [s for s in app.sources
               if source_name is None or source_name in (s.name, s.label)]
    if source_name is not None and not sources:
        known = ", ".join(s.label for s in app.sources) or "none configured"
        raise ConfigError(f"--source: no source named {source_name!r} (known: {known})")
    state = _State(app.spool.path.with_name(app.spool.path.name + ".backfill.json"))
    key = since.astimezone(UTC).isoformat()
    outcomes = []
    for source in sources:
        outcome = BackfillOutcome(source.label)
        outcomes.append(outcome)
        if not restart and state.done(key, source.label):
            outcome.skipped = True
            continue
        try:
            readings = list(await source.history(since))
        except PartialFailure as err:
            readings = list(err.readings)  # type: ignore[call-overload]
            outcome.errors += err.errors
        except CollectorError as err:
            outcome.errors.append(f"{type(err).__name__}: {err}")
            continue
        outcome.points = app.spool_readings(readings)
        if not outcome.errors:
            state.mark(key, source.label)
    await app.deliverer.drain()
    return outcomes
