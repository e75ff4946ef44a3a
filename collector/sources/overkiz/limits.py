"""A limiter for the per-session rate limits the Overkiz API documents.

Every limited operation in the spec carries a line "Per-session rate-limit : 1 calls per
<period> period for ... (<category>)". The limiter keeps, per category, the time of the last
call and refuses (``wait_s`` > 0) until the period has passed, so we never send a request the
server would reject for rate. Categories whose period is longer than any poll interval
(``bulk-load``: the once-a-day setup) are written to a private JSON file in the state
directory so a restarted process still honours them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from collector.errors import ParseError

log = logging.getLogger(__name__)


class Category(Enum):
    """The rate-limit categories named in the spec, with their period in seconds."""

    BULK_LOAD = ("bulk-load", 86_400.0)  # GET /setup, /setup/devices ...: 1 per 1d
    POLLING = ("polling", 1.0)  # POST /events/{listenerId}/fetch: 1 per 1s
    # GET /history, /history/devicesEvent, /history/lastExecutions ...: 1 per 28min 48s.
    # The state history (raw, daily, monthly) and the growing index variations document no
    # rate limit; the raw history only a 3-day span (history.py).
    BULK_HISTORY = ("bulk-history", 28 * 60 + 48.0)
    EXEC = ("exec", 28 * 60 + 48.0)  # executions: 1 per 28min 48s
    SWITCH = ("switch", 3600.0)  # 1 per 1h
    KEEP_ALIVE = ("keep-alive", 1.0)  # 1 per 1s

    def __init__(self, label: str, period_s: float) -> None:
        self.label = label
        self.period_s = period_s


#: Categories longer than this survive a restart through the state file.
PERSIST_ABOVE_S = 600.0


class RateLimiter:
    """Last-call times per category; persisted to ``path`` for the long categories."""

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Callable[[], float] = time.time,
        slower: dict[Category, float] | None = None,
        scope: str = "",
    ) -> None:
        self._path = path
        #: Whose limits these are (the API's address): a file of another server is not read.
        self._scope = scope
        self._clock = clock
        self._periods = {c: max(c.period_s, (slower or {}).get(c, 0.0)) for c in Category}
        self._last: dict[Category, float] = {}
        if path is not None:
            self._last.update(_load(path, scope))

    def period_s(self, category: Category) -> float:
        return self._periods[category]

    def wait_s(self, category: Category) -> float:
        """Seconds until a call of ``category`` is allowed (0 when it is allowed now)."""
        last = self._last.get(category)
        if last is None:
            return 0.0
        return max(0.0, last + self._periods[category] - self._clock())

    def record(self, category: Category) -> float | None:
        """Note that a call of ``category`` is being sent now; return the time of the call
        before it, for ``unanswered``."""
        previous = self._last.get(category)
        self._last[category] = self._clock()
        return previous

    def unanswered(self, category: Category, previous: float | None) -> None:
        """The call recorded last got no answer from the service (a timeout, a refused
        connection, a 5xx of the service or its proxy): the server counted no call, so the
        period starts again from the call before it. A day-limited load that timed out may
        be sent again as soon as the caller's own back-off allows."""
        if previous is None:
            self._last.pop(category, None)
        else:
            self._last[category] = previous

    def completed(self, category: Category) -> None:
        """Note that the call of ``category`` recorded last was answered: a long period is
        now written for the next process. A call that never got its answer (the process
        killed while it was under way) is not: the next process logs in anew, and the
        limits are per session, so it may make that call again (else a lost answer to the
        daily setup load would leave the next process without devices for a day)."""
        if self._path is not None and category.period_s > PERSIST_ABOVE_S:
            _save(self._path, self._last, self._scope)


def _load(path: Path, scope: str) -> dict[Category, float]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("cannot read the Overkiz rate-limit state %s: %s", path, exc)
        return {}
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ParseError("not an object", part=str(path))
    except (ValueError, ParseError) as exc:
        # A damaged file must not make us forget a limit in a way that gets us rejected:
        # treat every persisted category as just used.
        log.warning(
            "Overkiz rate-limit state %s is unreadable (%s); waiting full periods", path, exc
        )
        now = time.time()
        return {c: now for c in Category if c.period_s > PERSIST_ABOVE_S}
    if doc.get("api", "") != scope:
        return {}  # another server's limits
    by_label = {c.label: c for c in Category}
    out: dict[Category, float] = {}
    for label, value in doc.items():
        category = by_label.get(label)
        if category is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[category] = float(value)
    return out


def _save(path: Path, last: dict[Category, float], scope: str) -> None:
    doc: dict[str, object] = {c.label: t for c, t in last.items()
                              if c.period_s > PERSIST_ABOVE_S}
    doc["api"] = scope
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
