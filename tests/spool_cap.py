"""Imported first by a ``collector run`` process of the tests: every spool it opens has its
file capped at ``$COLLECTOR_TEST_SPOOL_PAGES`` pages (SQLite's ``max_page_count``), so that
it fills up as a small disk does, on any machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from collector.pipeline import spool

_PAGES = int(os.environ["COLLECTOR_TEST_SPOOL_PAGES"])
_open = spool.Spool.__init__


def _capped(self: spool.Spool, path: Path, **kwargs: Any) -> None:
    _open(self, path, **kwargs)
    self._db.execute(f"PRAGMA max_page_count={_PAGES}")


spool.Spool.__init__ = _capped  # type: ignore[method-assign]
