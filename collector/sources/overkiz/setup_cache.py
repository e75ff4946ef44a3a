"""The Overkiz setup kept on disk between processes: ``/setup`` is a bulk-load operation the
server allows once a day per session (spec: "Per-session rate-limit ... (bulk-load)"), so
``collector once``, ``collector backfill`` and a restarted daemon reuse the copy loaded last.

The file is private (0600), written whole (never torn), and names the API it came from: the
setup of another server or gateway is never taken for this one. The value of a password
state (data type 9) is not written.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: How long a loaded setup is used before it is loaded again.
SETUP_MAX_AGE_S = 86_400.0


class SetupCache:
    """The cached ``/setup`` answer of the API at ``api``, in the file ``path``."""

    def __init__(self, path: Path, api: str) -> None:
        self.path = path
        self.api = api

    def read(self, now: float, max_age_s: float = SETUP_MAX_AGE_S) -> tuple[object, float] | None:
        """(the setup, when it was loaded) when the file holds this API's setup younger than
        ``max_age_s``; None otherwise (an unreadable file is logged)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("Overkiz setup cache %s unreadable (%s)", self.path, exc)
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("fetched_at"), (int, float)):
            return None
        if raw.get("api") != self.api:  # the setup of another server or gateway
            return None
        fetched_at = float(raw["fetched_at"])
        if now - fetched_at >= max_age_s:
            return None
        return raw.get("setup"), fetched_at

    def write(self, doc: object, fetched_at: float) -> None:
        _withhold_passwords(doc)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"fetched_at": fetched_at, "api": self.api, "setup": doc}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def _withhold_passwords(doc: object) -> None:
    """Drop the values of password states (data type 9) from a setup answer, in place."""
    devices = doc.get("devices") if isinstance(doc, dict) else doc
    for device in devices if isinstance(devices, list) else []:
        states = device.get("states") if isinstance(device, dict) else None
        for state in states if isinstance(states, list) else []:
            if isinstance(state, dict) and state.get("type") == 9:
                state.pop("value", None)
